/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controllers

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/index"
	"github.com/keyward/keyward/internal/rules"
)

// KeyGroup condition reasons.
const (
	ReasonAccepted     = "Accepted"
	ReasonInvalidScope = "InvalidScope"
)

// KeyGroupReconciler reports a KeyGroup's verify URL and counts.
type KeyGroupReconciler struct {
	client.Client
	// VerifierURL is the verifier Service's base URL.
	VerifierURL string
}

// +kubebuilder:rbac:groups=keyward.dev,resources=keygroups,verbs=get;list;watch
// +kubebuilder:rbac:groups=keyward.dev,resources=keygroups/status,verbs=get;patch;update

// Reconcile writes a KeyGroup's status.
func (r *KeyGroupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	g := &keywardv1alpha1.KeyGroup{}
	if err := r.Get(ctx, req.NamespacedName, g); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := g.DeepCopy()
	var apps keywardv1alpha1.ApplicationList
	if err := r.List(ctx, &apps, client.InNamespace(g.Namespace), client.MatchingFields{index.ApplicationKeyGroup: g.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	g.Status.Applications, g.Status.ActiveKeys = 0, 0
	for i := range apps.Items {
		if rules.ApplicationAdmittedTo(&apps.Items[i], g) {
			g.Status.Applications++
			g.Status.ActiveKeys += apps.Items[i].Status.ActiveKeys
		}
	}
	if r.VerifierURL != "" {
		g.Status.VerifyURL = fmt.Sprintf("%s/v1/verify/%s/%s", strings.TrimSuffix(r.VerifierURL, "/"), g.Namespace, g.Name)
	}
	g.Status.ObservedGeneration = g.Generation
	cond := metav1.Condition{Type: keywardv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonAccepted,
		Message: fmt.Sprintf("%d scopes; keys are verified at %s", len(g.Spec.Scopes), g.Status.VerifyURL), ObservedGeneration: g.Generation}
	if err := validateScopes(g); err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, ReasonInvalidScope, err.Error()
	}
	meta.SetStatusCondition(&g.Status.Conditions, cond)
	if equality.Semantic.DeepEqual(orig.Status, g.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.Status().Patch(ctx, g, client.MergeFrom(orig)); err != nil {
		return ctrl.Result{}, fmt.Errorf("writing the status of KeyGroup %s/%s: %w", g.Namespace, g.Name, err)
	}
	return ctrl.Result{}, waitForCache(ctx, r.Client, g, orig.ResourceVersion)
}

// validateScopes reports the first scope rule the verifier cannot compile.
func validateScopes(g *keywardv1alpha1.KeyGroup) error {
	if errs := rules.ScopeRuleErrors(g); len(errs) > 0 {
		return fmt.Errorf("spec.scopes[%d].rules[%d]: %w", errs[0].Scope, errs[0].Rule, errs[0].Err)
	}
	return nil
}

// SetupWithManager watches KeyGroups and their Applications.
func (r *KeyGroupReconciler) SetupWithManager(mgr ctrl.Manager, o Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(o.name("keygroup")).
		For(&keywardv1alpha1.KeyGroup{}, builder.WithPredicates(specOrMetadataChanged())).
		// Applications change only the counts.
		Watches(&keywardv1alpha1.Application{}, enqueueAfter(countDelay, func(_ context.Context, o client.Object) []ctrl.Request {
			return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: string(o.(*keywardv1alpha1.Application).Spec.KeyGroup)}}}
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles, RateLimiter: rateLimiter()}).
		Complete(r)
}
