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
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/index"
	"github.com/keyward/keyward/internal/rules"
)

// ApplicationValidator is the validating webhook of Applications.
type ApplicationValidator struct {
	lookup
	// Clock tells the time for deletion protection.
	Clock clock.PassiveClock
}

func (v *ApplicationValidator) now() time.Time { return v.Clock.Now() }

var _ admission.Validator[*keywardv1alpha1.Application] = &ApplicationValidator{}

// ValidateCreate checks a new Application, its externalID and its group's
// maxApplications.
func (v *ApplicationValidator) ValidateCreate(ctx context.Context, a *keywardv1alpha1.Application) (admission.Warnings, error) {
	val := validateApplication(nil, a, requestUser(ctx))
	group, err := v.group(ctx, a.Namespace, string(a.Spec.KeyGroup))
	if err != nil {
		return nil, internalError(err)
	}
	siblings, err := v.applicationsOf(ctx, a.Namespace, string(a.Spec.KeyGroup))
	if err != nil {
		return nil, internalError(err)
	}
	val.errs = append(val.errs, externalIDTaken(a, siblings)...)
	switch {
	case group == nil:
		val.warn(WarnKeyGroupNotFound, a.Spec.KeyGroup, a.Namespace)
	case !a.Spec.Revoked:
		n := countApplications(a, siblings)
		val.errs = append(val.errs, applicationLimit(group, n)...)
	}
	return result(kindApplication, a.Name, val)
}

// ValidateUpdate checks a change to an Application.
func (v *ApplicationValidator) ValidateUpdate(ctx context.Context, old, a *keywardv1alpha1.Application) (admission.Warnings, error) {
	val := validateApplication(old, a, requestUser(ctx))
	if old.Spec.ExternalID == "" && a.Spec.ExternalID != "" {
		siblings, err := v.applicationsOf(ctx, a.Namespace, string(a.Spec.KeyGroup))
		if err != nil {
			return nil, internalError(err)
		}
		val.errs = append(val.errs, externalIDTaken(a, siblings)...)
	}
	return result(kindApplication, a.Name, val)
}

// ValidateDelete asks for keyward.dev/confirm-delete when the group's
// deletionProtection protects one of the application's keys, as deleting
// the key itself would.
func (v *ApplicationValidator) ValidateDelete(ctx context.Context, a *keywardv1alpha1.Application) (admission.Warnings, error) {
	if !a.DeletionTimestamp.IsZero() {
		return nil, nil
	}
	group, err := v.group(ctx, a.Namespace, string(a.Spec.KeyGroup))
	if err != nil || group == nil {
		return nil, internalErrorOrNil(err)
	}
	used, err := v.lastUses(ctx, a.Namespace, a.Name)
	if err != nil {
		return nil, internalError(err)
	}
	c := rules.DeletionConfirmation(group, used, v.now())
	return v.confirmDelete(ctx, kindApplication, a, c, group, a.ConfirmationValue(),
		fmt.Sprintf("the externalID of the Application (or its name, %q, when it has none)", a.Name))
}

// externalIDTaken refuses an externalID that another Application of the
// group holds.
func externalIDTaken(a *keywardv1alpha1.Application, siblings []keywardv1alpha1.Application) field.ErrorList {
	holders := rules.ExternalIDHolders(a, siblings)
	if len(holders) == 0 {
		return nil
	}
	return field.ErrorList{field.Invalid(specPath.Child("externalID"), a.Spec.ExternalID, fmt.Sprintf(
		"is already the externalID of Application %q of KeyGroup %q; an externalID names one customer within a KeyGroup: choose another",
		holders[0].Name, a.Spec.KeyGroup))}
}

// validateApplication checks an Application being created (old nil) by
// user, or changed.
func validateApplication(old, a *keywardv1alpha1.Application, user *authenticationv1.UserInfo) validation {
	var v validation
	if old == nil {
		v.errs = append(v.errs, validateCreatedBy(nil, a, user)...)
		return v
	}
	if old.Spec.KeyGroup != a.Spec.KeyGroup {
		v.errs = append(v.errs, field.Forbidden(specPath.Child("keyGroup"), hintNewApplicationGroup))
	}
	if old.Spec.Revoked && !a.Spec.Revoked {
		v.errs = append(v.errs, field.Forbidden(specPath.Child("revoked"), hintRevokedApplication))
	}
	if old.Spec.ExternalID != "" && old.Spec.ExternalID != a.Spec.ExternalID {
		v.errs = append(v.errs, field.Forbidden(specPath.Child("externalID"), fmt.Sprintf("%s (it is %q)", hintExternalIDSet, old.Spec.ExternalID)))
	}
	v.errs = append(v.errs, validateCreatedBy(old, a, nil)...)
	return v
}

// applicationLimit refuses one more application when the group already
// holds n that count against maxApplications.
func applicationLimit(g *keywardv1alpha1.KeyGroup, n int) field.ErrorList {
	limit := g.MaxApplications()
	if n < limit {
		return nil
	}
	return field.ErrorList{field.Forbidden(specPath.Child("keyGroup"), fmt.Sprintf(
		"KeyGroup %q already has %d/%d applications that count against its maxApplications (Active ones and ones being admitted; revoked ones do not count); "+
			"revoke or delete one of its applications, or raise spec.limits.maxApplications of the group", g.Name, n, limit))}
}

// applicationsOf lists, from the cache, the Applications of a group.
func (v *ApplicationValidator) applicationsOf(ctx context.Context, namespace, group string) ([]keywardv1alpha1.Application, error) {
	var list keywardv1alpha1.ApplicationList
	if err := v.cache.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{index.ApplicationKeyGroup: group}); err != nil {
		return nil, fmt.Errorf("listing the Applications of KeyGroup %s/%s: %w", namespace, group, err)
	}
	return list.Items, nil
}

// countApplications counts the applications of the group other than a that
// hold or are about to hold a slot: Active ones and those the controller
// has not decided on yet. The controller decides the same way, and remains
// the judge when two creations race.
func countApplications(a *keywardv1alpha1.Application, siblings []keywardv1alpha1.Application) int {
	n := 0
	for i := range siblings {
		if o := &siblings[i]; o.Name != a.Name && rules.ApplicationOccupiesSlot(o) {
			n++
		}
	}
	return n
}

// requestUser is the user of the admission request in ctx, nil outside one.
func requestUser(ctx context.Context) *authenticationv1.UserInfo {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return nil
	}
	return &req.UserInfo
}
