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

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/grants"
)

// GrantChecker answers whether a user may grant a KeyGroup's scope in a
// namespace: a *grants.Reviewer, shared with the controller.
type GrantChecker interface {
	CanGrant(ctx context.Context, user authenticationv1.UserInfo, namespace, keyGroup, scope string) (bool, error)
}

// checkGrants refuses every scope of a new key that the requesting user may
// not grant, naming the permission that is missing. Scopes the group does
// not define are refused by validateScopes already.
func checkGrants(ctx context.Context, gc GrantChecker, k *keywardv1alpha1.APIKey, in keyContext) (field.ErrorList, error) {
	refused, err := ungranted(ctx, gc, k, in)
	if err != nil {
		return nil, err
	}
	group := string(in.app.Spec.KeyGroup)
	var errs field.ErrorList
	for _, i := range refused {
		s := string(k.Spec.Scopes[i])
		errs = append(errs, field.Forbidden(specPath.Child("scopes").Index(i), fmt.Sprintf(
			"user %q may not grant scope %q of KeyGroup %q: needs %s",
			in.user.Username, s, group, grants.Permission(k.Namespace, group, s))))
	}
	return errs, nil
}

// checkRotationGrants refuses a request for a rotation (a new
// keyward.dev/rotate value, or spec.rotation set or changed) by a user who
// may not grant every scope of the key: the rotation would hand whoever can
// read the delivery Secret a new key of those scopes.
func checkRotationGrants(ctx context.Context, gc GrantChecker, old, k *keywardv1alpha1.APIKey, in keyContext) (field.ErrorList, error) {
	refused, err := ungranted(ctx, gc, k, in)
	if err != nil || len(refused) == 0 {
		return nil, err
	}
	p := annotationsPath.Key(keywardv1alpha1.AnnotationRotate)
	if old.Annotations[keywardv1alpha1.AnnotationRotate] == k.Annotations[keywardv1alpha1.AnnotationRotate] {
		p = specPath.Child("rotation")
	}
	group, s := string(in.app.Spec.KeyGroup), string(k.Spec.Scopes[refused[0]])
	return field.ErrorList{field.Forbidden(p, fmt.Sprintf(
		"a rotation issues a new key of the key's scopes, and user %q may not grant scope %q of KeyGroup %q: needs %s; ask someone who may",
		in.user.Username, s, group, grants.Permission(k.Namespace, group, s)))}, nil
}

// ungranted returns the indexes of the key's scopes, of those its group
// defines, that the requesting user may not grant.
func ungranted(ctx context.Context, gc GrantChecker, k *keywardv1alpha1.APIKey, in keyContext) ([]int, error) {
	group := string(in.app.Spec.KeyGroup)
	var refused []int
	for i, s := range k.Spec.Scopes {
		if in.group != nil && in.group.Scope(string(s)) == nil {
			continue
		}
		ok, err := gc.CanGrant(ctx, *in.user, k.Namespace, group, string(s))
		if err != nil {
			return nil, err
		}
		if !ok {
			refused = append(refused, i)
		}
	}
	return refused, nil
}
