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

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/controllers"
)

// ApplicationValidator is the validating webhook of Applications.
type ApplicationValidator struct {
	lookup
}

var _ admission.Validator[*keywardv1alpha1.Application] = &ApplicationValidator{}

// ValidateCreate checks a new Application, and its group's maxApplications.
func (v *ApplicationValidator) ValidateCreate(ctx context.Context, a *keywardv1alpha1.Application) (admission.Warnings, error) {
	val := validateApplication(nil, a, requestUser(ctx))
	group, err := v.group(ctx, a.Namespace, string(a.Spec.KeyGroup))
	if err != nil {
		return nil, internalError(err)
	}
	switch {
	case group == nil:
		val.warn(WarnKeyGroupNotFound, a.Spec.KeyGroup, a.Namespace)
	case !a.Spec.Revoked:
		n, err := v.countApplications(ctx, a, group)
		if err != nil {
			return nil, internalError(err)
		}
		val.errs = append(val.errs, applicationLimit(group, n)...)
	}
	return result(kindApplication, a.Name, val)
}

// ValidateUpdate checks a change to an Application.
func (v *ApplicationValidator) ValidateUpdate(ctx context.Context, old, a *keywardv1alpha1.Application) (admission.Warnings, error) {
	return result(kindApplication, a.Name, validateApplication(old, a, requestUser(ctx)))
}

// ValidateDelete lets every deletion through.
func (v *ApplicationValidator) ValidateDelete(context.Context, *keywardv1alpha1.Application) (admission.Warnings, error) {
	return nil, nil
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

// countApplications counts, from the cache, the applications of group
// other than a that hold or are about to hold a slot: Active ones and
// those the controller has not decided on yet. The controller decides the
// same way, and remains the judge when two creations race.
func (v *ApplicationValidator) countApplications(ctx context.Context, a *keywardv1alpha1.Application, g *keywardv1alpha1.KeyGroup) (int, error) {
	var list keywardv1alpha1.ApplicationList
	if err := v.cache.List(ctx, &list, client.InNamespace(a.Namespace), client.MatchingFields{controllers.IndexApplicationKeyGroup: g.Name}); err != nil {
		return 0, fmt.Errorf("listing the Applications of KeyGroup %s/%s: %w", g.Namespace, g.Name, err)
	}
	n := 0
	for i := range list.Items {
		if o := &list.Items[i]; o.Name != a.Name && occupiesApplicationSlot(o) {
			n++
		}
	}
	return n, nil
}

func occupiesApplicationSlot(a *keywardv1alpha1.Application) bool {
	if a.Spec.Revoked || !a.DeletionTimestamp.IsZero() {
		return false
	}
	switch a.Status.Phase {
	case keywardv1alpha1.ApplicationActive, keywardv1alpha1.ApplicationPending, "":
		return true
	}
	return false
}

// requestUser is the user of the admission request in ctx, nil outside one.
func requestUser(ctx context.Context) *authenticationv1.UserInfo {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return nil
	}
	return &req.UserInfo
}
