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

// Package webhook is keyward's admission: a clear "no" at kubectl apply
// time, before anything is minted.
//
// Validating webhooks check every rule of DESIGN §3 that can be decided
// when an object is written: immutable and one-way fields, expiry within
// the group's maxKeyLifetime, scopes that exist in the group, the RBAC
// "grant" on every scope a key is given, the limits on applications and
// keys, and the confirmation that deleting a protected key needs. A
// mutating webhook records who created each Application and APIKey.
//
// Each kind has one validate(old, new) returning a field.ErrorList, so that
// create and update share their rules and table tests can compare exact
// errors; the checks that need the API server (counts from the manager's
// cache, SubjectAccessReviews) sit next to it in the validator. The
// controllers stay the final enforcers: webhooks race and can be bypassed by
// whoever edits webhook configurations.
//
// certs.go keeps the webhook's TLS certificate: a CA and serving certificate
// created and rotated by the manager itself, with the CA bundle injected into
// the webhook configurations.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/runtime"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/grants"
	"github.com/keyward/keyward/internal/index"
)

// Webhook configurations: one validating webhook per kind (each also on
// DELETE, for deletion protection) and a mutating webhook that
// records the creating user on Applications and APIKeys. The service name
// and namespace are kustomize's to rewrite (config/webhook).
//
// +kubebuilder:webhook:path=/validate-keyward-dev-v1alpha1-keygroup,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,timeoutSeconds=5,groups=keyward.dev,resources=keygroups,verbs=create;update;delete,versions=v1alpha1,name=vkeygroup.keyward.dev,admissionReviewVersions=v1,serviceName=webhook,serviceNamespace=system
// +kubebuilder:webhook:path=/validate-keyward-dev-v1alpha1-application,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,timeoutSeconds=5,groups=keyward.dev,resources=applications,verbs=create;update;delete,versions=v1alpha1,name=vapplication.keyward.dev,admissionReviewVersions=v1,serviceName=webhook,serviceNamespace=system
// +kubebuilder:webhook:path=/validate-keyward-dev-v1alpha1-apikey,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,timeoutSeconds=5,groups=keyward.dev,resources=apikeys,verbs=create;update;delete,versions=v1alpha1,name=vapikey.keyward.dev,admissionReviewVersions=v1,serviceName=webhook,serviceNamespace=system
// +kubebuilder:webhook:path=/mutate-keyward-dev-v1alpha1-application,mutating=true,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,timeoutSeconds=5,reinvocationPolicy=IfNeeded,groups=keyward.dev,resources=applications,verbs=create;update,versions=v1alpha1,name=mapplication.keyward.dev,admissionReviewVersions=v1,serviceName=webhook,serviceNamespace=system
// +kubebuilder:webhook:path=/mutate-keyward-dev-v1alpha1-apikey,mutating=true,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,timeoutSeconds=5,reinvocationPolicy=IfNeeded,groups=keyward.dev,resources=apikeys,verbs=create;update,versions=v1alpha1,name=mapikey.keyward.dev,admissionReviewVersions=v1,serviceName=webhook,serviceNamespace=system

// What the webhooks read and ask: keyward objects from the manager's cache,
// SubjectAccessReviews for the grant check, and Namespaces (live, rarely)
// to let a namespace's deletion through deletion protection.
//
// +kubebuilder:rbac:groups=keyward.dev,resources=keygroups;applications;apikeys,verbs=get;list;watch
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// Options configure the webhooks.
type Options struct {
	// Clock tells the time for deletion protection and expiry; tests move
	// it. Default: the real clock.
	Clock clock.PassiveClock
	// MinRotationEvery is the shortest spec.rotation.every of an APIKey;
	// DefaultMinRotationEvery when zero.
	MinRotationEvery time.Duration
	// Grants asks whether a user may grant a scope; the manager shares it
	// with the controller, so that their identical reviews are sent once.
	// Default: a Reviewer of its own over the manager's client.
	Grants *grants.Reviewer
	// Book holds each application's keys, for the limit; the manager
	// shares it with the controller. Default: a book of its own, of keys
	// only, fed by mgr's cache.
	Book *index.Book
}

// Setup registers the validating and mutating webhooks with mgr's webhook
// server. The field indexes of the controllers (spec.application on
// APIKeys, spec.keyGroup on Applications) must be registered first:
// limits are counted through them.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Grants == nil {
		o.Grants = grants.NewReviewer(mgr.GetClient())
	}
	if o.Book == nil {
		var err error
		if o.Book, err = index.RegisterBook(context.Background(), mgr.GetCache(), ""); err != nil {
			return err
		}
	}
	l := lookup{cache: mgr.GetClient(), live: mgr.GetAPIReader()}
	errs := []error{
		ctrl.NewWebhookManagedBy(mgr, &keywardv1alpha1.KeyGroup{}).
			WithValidator(&KeyGroupValidator{lookup: l, Clock: o.Clock}).
			Complete(),
		ctrl.NewWebhookManagedBy(mgr, &keywardv1alpha1.Application{}).
			WithValidator(&ApplicationValidator{lookup: l, Clock: o.Clock}).
			Complete(),
		ctrl.NewWebhookManagedBy(mgr, &keywardv1alpha1.APIKey{}).
			WithValidator(&APIKeyValidator{lookup: l, Grants: o.Grants, Book: o.Book, Clock: o.Clock, MinRotationEvery: o.MinRotationEvery}).
			Complete(),
	}
	registerDefaulter(mgr, MutatingPathApplication, &CreatedByDefaulter[*keywardv1alpha1.Application]{})
	registerDefaulter(mgr, MutatingPathAPIKey, &APIKeyDefaulter{CreatedByDefaulter: CreatedByDefaulter[*keywardv1alpha1.APIKey]{Finalizer: keywardv1alpha1.Finalizer}, lookup: l})
	return errors.Join(errs...)
}

// The mutating webhooks' paths, as the webhook configurations name them.
//
//nolint:gosec // G101: URL paths, not credentials
const (
	MutatingPathApplication = "/mutate-keyward-dev-v1alpha1-application"
	MutatingPathAPIKey      = "/mutate-keyward-dev-v1alpha1-apikey"
)

// registerDefaulter serves d at path. A mutating webhook runs before the
// API server checks the object against its schema, and decoding it can
// fail where the schema has the better answer: "spec.rotation.every:
// Invalid value: ... must be a positive duration ... not 1d", where the
// decoder says only "time: invalid duration". An object that does not
// decode is let through unchanged: the schema refuses it with its field,
// and should the schema let it pass, the validating webhook, which decodes
// it too, refuses it. Nothing is stored without both.
func registerDefaulter[T runtime.Object](mgr ctrl.Manager, path string, d admission.Defaulter[T]) {
	hook := admission.WithDefaulter(mgr.GetScheme(), d)
	hook.Handler = undecodableAllowed{hook.Handler}
	mgr.GetWebhookServer().Register(path, hook)
}

// undecodableAllowed lets an object the defaulter could not decode through
// unchanged. controller-runtime's defaulter answers 400 Bad Request for that
// and for nothing else (its own failures are 500, a refusal 403), so the
// object is decoded once, by the defaulter, not again here.
type undecodableAllowed struct{ admission.Handler }

func (h undecodableAllowed) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp := h.Handler.Handle(ctx, req)
	if !resp.Allowed && resp.Result != nil && resp.Result.Code == http.StatusBadRequest {
		return admission.Allowed("not decodable: left to the schema and the validating webhook")
	}
	return resp
}

// lookup reads the objects a decision depends on: from the manager's cache,
// and, for an object the cache does not have yet (created a moment ago),
// from the API server.
type lookup struct {
	cache client.Reader
	live  client.Reader
}

// get reads obj, reporting false when it does not exist. A name that no
// object can have (empty, "." or "..", or holding '/' or '%') names
// nothing: the mutating webhook runs before the schema, which then refuses
// the field by its path, where asking the API server would end in an
// internal error.
func (l lookup) get(ctx context.Context, key client.ObjectKey, obj client.Object) (bool, error) {
	if key.Name == "" || len(content.IsPathSegmentName(key.Name)) > 0 {
		return false, nil
	}
	err := l.cache.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) && l.live != nil {
		err = l.live.Get(ctx, key, obj)
	}
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("getting %T %s: %w", obj, key, err)
	}
}

// applicationAndGroup reads the application a key belongs to and that
// application's KeyGroup; either is nil when it does not exist (yet).
func (l lookup) applicationAndGroup(ctx context.Context, namespace, app string) (*keywardv1alpha1.Application, *keywardv1alpha1.KeyGroup, error) {
	a := &keywardv1alpha1.Application{}
	found, err := l.get(ctx, client.ObjectKey{Namespace: namespace, Name: app}, a)
	if err != nil || !found {
		return nil, nil, err
	}
	g, err := l.group(ctx, namespace, string(a.Spec.KeyGroup))
	return a, g, err
}

// group reads a KeyGroup, nil when it does not exist or is being deleted.
func (l lookup) group(ctx context.Context, namespace, name string) (*keywardv1alpha1.KeyGroup, error) {
	g := &keywardv1alpha1.KeyGroup{}
	found, err := l.get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, g)
	if err != nil || !found || !g.DeletionTimestamp.IsZero() {
		return nil, err
	}
	return g, nil
}

// internalError is what a validator returns when it could not decide: the
// API server refuses the request (failurePolicy does not apply to an
// answer) with the cause.
func internalError(err error) error {
	return apierrors.NewInternalError(err)
}
