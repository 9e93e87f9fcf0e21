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
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/index"
)

// createdByAnnotations are the annotations that record the creator. Both
// are set on create and immutable afterwards.
var createdByAnnotations = []string{keywardv1alpha1.AnnotationCreatedBy, keywardv1alpha1.AnnotationCreatedByUID}

// CreatedByDefaulter is the mutating webhook of Applications and APIKeys.
// On create it records the requesting user in keyward.dev/created-by (and,
// for a ServiceAccount, its UID in keyward.dev/created-by-uid), overwriting
// whatever the request carried, and adds Finalizer when set. On update it
// puts back a creator annotation that the request dropped (a server-side
// apply of a manifest that never had it would otherwise remove it); a
// changed value is left for the validating webhook to refuse.
type CreatedByDefaulter[T client.Object] struct {
	// Finalizer, when set, is added to every new object, which saves the
	// controller a write.
	Finalizer string
}

// Default records the creator.
func (d *CreatedByDefaulter[T]) Default(ctx context.Context, obj T) error {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return internalError(err)
	}
	switch req.Operation {
	case admissionv1.Create:
		setAnnotations(obj, creatorAnnotations(req.UserInfo))
		if d.Finalizer != "" {
			controllerutil.AddFinalizer(obj, d.Finalizer)
		}
	case admissionv1.Update:
		var old struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := json.Unmarshal(req.OldObject.Raw, &old); err != nil {
			return internalError(fmt.Errorf("decoding the old object: %w", err))
		}
		restoreCreatedBy(obj, &old.Metadata)
	}
	return nil
}

// creatorAnnotations are the creator annotations an object created by user
// must carry; a value of "" means the annotation must be absent.
func creatorAnnotations(user authenticationv1.UserInfo) map[string]string {
	uid := ""
	if strings.HasPrefix(user.Username, index.ServiceAccountUserPrefix) {
		uid = user.UID
	}
	return map[string]string{
		keywardv1alpha1.AnnotationCreatedBy:    user.Username,
		keywardv1alpha1.AnnotationCreatedByUID: uid,
	}
}

func setAnnotations(obj metav1.Object, values map[string]string) {
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	for k, v := range values {
		if v == "" {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	obj.SetAnnotations(a)
}

// restoreCreatedBy puts back the creator annotations (and a key's identity
// and parent UIDs) that obj lost since old.
func restoreCreatedBy(obj, old metav1.Object) {
	back := map[string]string{}
	for _, k := range append(createdByAnnotations, keyAnnotations...) {
		v, had := old.GetAnnotations()[k]
		if _, has := obj.GetAnnotations()[k]; had && !has {
			back[k] = v
		}
	}
	if len(back) > 0 {
		setAnnotations(obj, back)
	}
}

// validateCreatedBy checks the creator annotations: on create (old nil)
// they must be what the mutating webhook sets for user (nil: not known, not
// checked), and afterwards they never change.
func validateCreatedBy(old, obj metav1.Object, user *authenticationv1.UserInfo) field.ErrorList {
	var errs field.ErrorList
	if old == nil {
		if user == nil {
			return nil
		}
		want := creatorAnnotations(*user)
		for _, k := range createdByAnnotations {
			if got := obj.GetAnnotations()[k]; got != want[k] {
				errs = append(errs, field.Forbidden(annotationsPath.Key(k), fmt.Sprintf(hintCreatedByForged, want[k])))
			}
		}
		return errs
	}
	for _, k := range createdByAnnotations {
		was, had := old.GetAnnotations()[k]
		is, has := obj.GetAnnotations()[k]
		if had != has || was != is {
			errs = append(errs, field.Forbidden(annotationsPath.Key(k), hintCreatedBy))
		}
	}
	return errs
}
