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

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/grants"
)

// APIKeyDefaulter is the mutating webhook of APIKeys: the creator
// annotations and the finalizer (CreatedByDefaulter), and, for a key whose
// Application does not exist yet, keyward.dev/grant-check, so that GitOps
// tools may apply an Application and its keys together.
type APIKeyDefaulter struct {
	CreatedByDefaulter[*keywardv1alpha1.APIKey]
	lookup
}

// Default records the creator and, when admission cannot check the grant
// of the key's scopes, who the controller must check it for.
func (d *APIKeyDefaulter) Default(ctx context.Context, k *keywardv1alpha1.APIKey) error {
	if err := d.CreatedByDefaulter.Default(ctx, k); err != nil {
		return err
	}
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return internalError(err)
	}
	if req.Operation != admissionv1.Create {
		return nil
	}
	app, _, err := d.applicationAndGroup(ctx, k.Namespace, string(k.Spec.Application))
	if err != nil {
		return internalError(err)
	}
	want := ""
	if app == nil {
		if want, err = grants.Identity(req.UserInfo); err != nil {
			return internalError(err)
		}
	}
	setAnnotations(k, map[string]string{keywardv1alpha1.AnnotationGrantCheck: want})
	return nil
}

// validateGrantCheck checks keyward.dev/grant-check: on create (old nil) it
// is absent, or the identity of the requesting user (user nil: not known,
// not checked), and present when the key's Application does not exist;
// afterwards it never changes.
func validateGrantCheck(old, k metav1.Object, user *authenticationv1.UserInfo, appMissing bool) field.ErrorList {
	p := annotationsPath.Key(keywardv1alpha1.AnnotationGrantCheck)
	got, has := k.GetAnnotations()[keywardv1alpha1.AnnotationGrantCheck]
	if old != nil {
		if was, had := old.GetAnnotations()[keywardv1alpha1.AnnotationGrantCheck]; had != has || was != got {
			return field.ErrorList{field.Forbidden(p, hintGrantCheck)}
		}
		return nil
	}
	if user == nil {
		return nil
	}
	want, err := grants.Identity(*user)
	switch {
	case err != nil:
		return field.ErrorList{field.InternalError(p, err)}
	case has && got != want, !has && appMissing:
		return field.ErrorList{field.Forbidden(p, hintGrantCheckForged)}
	}
	return nil
}
