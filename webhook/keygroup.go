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

package webhook

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/index"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/rules"
)

// KeyGroupValidator is the validating webhook of KeyGroups.
type KeyGroupValidator struct {
	lookup
	// Clock tells the time for deletion protection.
	Clock clock.PassiveClock
}

var _ admission.Validator[*keywardv1alpha1.KeyGroup] = &KeyGroupValidator{}

// ValidateCreate checks a new KeyGroup.
func (v *KeyGroupValidator) ValidateCreate(_ context.Context, g *keywardv1alpha1.KeyGroup) (admission.Warnings, error) {
	return result(kindKeyGroup, g.Name, validateKeyGroup(nil, g))
}

// ValidateUpdate checks a change to a KeyGroup.
func (v *KeyGroupValidator) ValidateUpdate(_ context.Context, old, g *keywardv1alpha1.KeyGroup) (admission.Warnings, error) {
	return result(kindKeyGroup, g.Name, validateKeyGroup(old, g))
}

// ValidateDelete asks for keyward.dev/confirm-delete, equal to the group's
// name, when its deletionProtection protects one of its keys, as deleting
// the key itself would.
func (v *KeyGroupValidator) ValidateDelete(ctx context.Context, g *keywardv1alpha1.KeyGroup) (admission.Warnings, error) {
	if !g.DeletionTimestamp.IsZero() {
		return nil, nil
	}
	var apps keywardv1alpha1.ApplicationList
	if err := v.cache.List(ctx, &apps, client.InNamespace(g.Namespace), client.MatchingFields{index.ApplicationKeyGroup: g.Name}); err != nil {
		return nil, internalError(fmt.Errorf("listing the Applications of KeyGroup %s/%s: %w", g.Namespace, g.Name, err))
	}
	names := make([]string, 0, len(apps.Items))
	for i := range apps.Items {
		names = append(names, apps.Items[i].Name)
	}
	used, err := v.lastUses(ctx, g.Namespace, names...)
	if err != nil {
		return nil, internalError(err)
	}
	c := rules.DeletionConfirmation(g, used, v.Clock.Now())
	return v.confirmDelete(ctx, kindKeyGroup, g, c, g, g.Name, fmt.Sprintf("the KeyGroup's name, %q", g.Name))
}

// validation is what a validate function found: errors refuse the
// request, warnings are shown with it.
type validation struct {
	errs     field.ErrorList
	warnings admission.Warnings
}

func (v *validation) warn(format string, args ...any) {
	v.warnings = append(v.warnings, fmt.Sprintf(format, args...))
}

// result is the validator's answer for v.
func result(kind schema.GroupKind, name string, v validation) (admission.Warnings, error) {
	if len(v.errs) == 0 {
		return v.warnings, nil
	}
	return v.warnings, apierrors.NewInvalid(kind, name, v.errs)
}

// validateKeyGroup checks a KeyGroup being created (old nil) or changed.
//
// The CRD already refuses most malformed groups; this adds what only Go
// can check: every scope rule is one the verifier can match (the same
// match.CompileRule the verifier runs), and keyPrefix never changes. A new
// group is warned of a prefix that hides its keys from gitleaks.
func validateKeyGroup(old, g *keywardv1alpha1.KeyGroup) validation {
	v := validation{errs: validateScopeRules(g)}
	if old == nil {
		if keys.PrefixHiddenFromGitleaks(g.Prefix()) {
			v.warn(WarnPrefixHiddenFromGitleaks, g.Prefix())
		}
		return v
	}
	if old.Prefix() != g.Prefix() {
		v.errs = append(v.errs, field.Forbidden(specPath.Child("keyPrefix"), hintKeyPrefix))
	}
	for _, s := range old.Spec.Scopes {
		if g.Scope(string(s.Name)) == nil {
			v.warn(WarnScopeRemoved, s.Name)
		}
	}
	if was, is := old.MaxApplications(), g.MaxApplications(); is < was {
		v.warn(WarnLimitLowered, "spec.limits.maxApplications", was, is)
	}
	if was, is := old.MaxKeysPerApplication(), g.MaxKeysPerApplication(); is < was {
		v.warn(WarnLimitLowered, "spec.limits.maxKeysPerApplication", was, is)
	}
	if was, is := old.Spec.MaxKeyLifetime, g.Spec.MaxKeyLifetime; is != nil && (was == nil || is.Duration < was.Duration) {
		v.warn(WarnMaxKeyLifetimeChanged)
	}
	return v
}

// validateScopeRules refuses scope rules the verifier cannot compile.
func validateScopeRules(g *keywardv1alpha1.KeyGroup) field.ErrorList {
	var errs field.ErrorList
	for _, e := range rules.ScopeRuleErrors(g) {
		rule := specPath.Child("scopes").Index(e.Scope).Child("rules").Index(e.Rule)
		r := g.Spec.Scopes[e.Scope].Rules[e.Rule]
		if e.Path >= 0 {
			errs = append(errs, field.Invalid(rule.Child("paths").Index(e.Path), string(r.Paths[e.Path]), matchError(e.Err)))
			continue
		}
		methods := make([]string, 0, len(r.Methods))
		for _, m := range r.Methods {
			methods = append(methods, string(m))
		}
		errs = append(errs, field.Invalid(rule.Child("methods"), methods, matchError(e.Err)))
	}
	return errs
}

// matchError is a match.CompileRule error as a field error detail.
func matchError(err error) string {
	return "the verifier cannot match it: " + strings.TrimPrefix(err.Error(), "match: ")
}
