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
	"encoding/json"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/grants"
)

// APIKeyDefaulter is the mutating webhook of APIKeys: the creator
// annotations and the finalizer (CreatedByDefaulter); the creator's whole
// identity in keyward.dev/grant-check, for the controller's grant check just
// before it mints; and the UIDs of the Application and KeyGroup the key is
// admitted under (keyward.dev/application-uid, keyward.dev/keygroup-uid),
// which bind the key to them for good.
type APIKeyDefaulter struct {
	CreatedByDefaulter[*keywardv1alpha1.APIKey]
	lookup
}

// Default records the creator and the parents the key is admitted under,
// overwriting whatever the request carried.
func (d *APIKeyDefaulter) Default(ctx context.Context, k *keywardv1alpha1.APIKey) error {
	if err := d.CreatedByDefaulter.Default(ctx, k); err != nil {
		return err
	}
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return internalError(err)
	}
	if req.Operation == admissionv1.Update {
		return d.recordRotationRequest(req, k)
	}
	if req.Operation != admissionv1.Create {
		return nil
	}
	app, group, err := d.applicationAndGroup(ctx, k.Namespace, string(k.Spec.Application))
	if err != nil {
		return internalError(err)
	}
	identity, err := grants.Identity(req.UserInfo)
	if err != nil {
		return internalError(err)
	}
	want := bindingAnnotations(app, group)
	want[keywardv1alpha1.AnnotationGrantCheck] = identity
	want[keywardv1alpha1.AnnotationRotationRequestedBy] = ""
	setAnnotations(k, want)
	return nil
}

// recordRotationRequest records, on an update that asks for a rotation,
// who asked (keyward.dev/rotation-requested-by); any other update keeps
// the value the key had.
func (d *APIKeyDefaulter) recordRotationRequest(req admission.Request, k *keywardv1alpha1.APIKey) error {
	old := &keywardv1alpha1.APIKey{}
	if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
		return internalError(err)
	}
	want := old.Annotations[keywardv1alpha1.AnnotationRotationRequestedBy]
	if RotationRequested(old, k) {
		identity, err := grants.Identity(req.UserInfo)
		if err != nil {
			return internalError(err)
		}
		want = identity
	}
	setAnnotations(k, map[string]string{keywardv1alpha1.AnnotationRotationRequestedBy: want})
	return nil
}

// RotationRequested reports whether changing old into k asks for a
// rotation: a new keyward.dev/rotate value, or spec.rotation set or
// changed.
func RotationRequested(old, k *keywardv1alpha1.APIKey) bool {
	v := k.Annotations[keywardv1alpha1.AnnotationRotate]
	return (v != "" && v != old.Annotations[keywardv1alpha1.AnnotationRotate]) ||
		(k.Spec.Rotation != nil && !equality.Semantic.DeepEqual(old.Spec.Rotation, k.Spec.Rotation))
}

// validateRotationRequester checks keyward.dev/rotation-requested-by on an
// update: it changes only when the update asks for a rotation, to the
// requesting user's identity (user nil: not known, not checked).
func validateRotationRequester(old, k *keywardv1alpha1.APIKey, user *authenticationv1.UserInfo) field.ErrorList {
	a := keywardv1alpha1.AnnotationRotationRequestedBy
	was, is := old.Annotations[a], k.Annotations[a]
	if was == is {
		return nil
	}
	if RotationRequested(old, k) {
		if user == nil {
			return nil
		}
		if identity, err := grants.Identity(*user); err == nil && identity == is {
			return nil
		}
	}
	return field.ErrorList{field.Forbidden(annotationsPath.Key(a), hintKeyAnnotationForged)}
}

// bindingAnnotations are the parent UIDs a key admitted under app and group
// carries; a value of "" means the annotation must be absent. A key is
// bound to each that exists (the Application's KeyGroup is immutable, so
// binding the Application fixes the group's name); what did not exist yet
// is bound by the controller when it mints.
func bindingAnnotations(app *keywardv1alpha1.Application, group *keywardv1alpha1.KeyGroup) map[string]string {
	m := map[string]string{keywardv1alpha1.AnnotationApplicationUID: "", keywardv1alpha1.AnnotationKeyGroupUID: ""}
	if app != nil {
		m[keywardv1alpha1.AnnotationApplicationUID] = string(app.UID)
	}
	if group != nil {
		m[keywardv1alpha1.AnnotationKeyGroupUID] = string(group.UID)
	}
	return m
}

// keyAnnotations are the annotations keyward sets on an APIKey when it is
// created and that never change afterwards.
var keyAnnotations = []string{
	keywardv1alpha1.AnnotationGrantCheck, keywardv1alpha1.AnnotationApplicationUID, keywardv1alpha1.AnnotationKeyGroupUID,
}

// validateKeyAnnotations checks the annotations the mutating webhook sets
// on an APIKey: on create (old nil) they are the requesting user's identity
// (user nil: not known, not checked) and the UIDs of app and group, or no
// UIDs; after that they never change.
func validateKeyAnnotations(old, k metav1.Object, user *authenticationv1.UserInfo, app *keywardv1alpha1.Application, group *keywardv1alpha1.KeyGroup) field.ErrorList {
	var errs field.ErrorList
	if old != nil {
		for _, a := range keyAnnotations {
			was, had := old.GetAnnotations()[a]
			is, has := k.GetAnnotations()[a]
			if had != has || was != is {
				errs = append(errs, field.Forbidden(annotationsPath.Key(a), hintKeyAnnotation))
			}
		}
		return errs
	}
	if user == nil {
		return nil
	}
	identity, err := grants.Identity(*user)
	if err != nil {
		return field.ErrorList{field.InternalError(annotationsPath.Key(keywardv1alpha1.AnnotationGrantCheck), err)}
	}
	want := bindingAnnotations(app, group)
	want[keywardv1alpha1.AnnotationGrantCheck] = identity
	if _, sent := k.GetAnnotations()[keywardv1alpha1.AnnotationRotationRequestedBy]; sent {
		errs = append(errs, field.Forbidden(annotationsPath.Key(keywardv1alpha1.AnnotationRotationRequestedBy), hintKeyAnnotationForged))
	}
	for _, a := range keyAnnotations {
		got, has := k.GetAnnotations()[a]
		// A parent created between the mutating webhook's look and this
		// one leaves a key unbound, which the controller binds at mint.
		unbound := !has && a != keywardv1alpha1.AnnotationGrantCheck
		if got != want[a] && !unbound {
			errs = append(errs, field.Forbidden(annotationsPath.Key(a), hintKeyAnnotationForged))
		}
	}
	return errs
}
