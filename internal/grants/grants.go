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

// Package grants asks the API server whether a user may grant a KeyGroup's
// scope: the admission webhook for the user making a request, the
// controller for the recorded creator of a key admitted before its
// Application existed.
package grants

import (
	"context"
	"encoding/json"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

// The RBAC permission that granting a scope takes: verb "grant" on the
// resource scopes.keyward.dev named "<keygroup>.<scope>", in the key's
// namespace. No such resource is served: it exists only in RBAC rules,
// like "escalate" on roles.
const (
	Verb     = "grant"
	Resource = "scopes"
)

// ScopeResourceName is the RBAC resource name of a KeyGroup's scope.
func ScopeResourceName(keyGroup, scope string) string {
	return keyGroup + "." + scope
}

// Permission describes what granting the scope takes, for messages.
func Permission(namespace, keyGroup, scope string) string {
	return fmt.Sprintf("verb %q on %s.%s named %q in namespace %q",
		Verb, Resource, keywardv1alpha1.GroupVersion.Group, ScopeResourceName(keyGroup, scope), namespace)
}

// CanGrant asks, through a SubjectAccessReview, whether user holds "grant"
// on the scope, so every authorizer (RBAC, webhooks) has its say.
func CanGrant(ctx context.Context, c client.Client, user authenticationv1.UserInfo, namespace, keyGroup, scope string) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace,
			Verb:      Verb,
			Group:     keywardv1alpha1.GroupVersion.Group,
			Resource:  Resource,
			Name:      ScopeResourceName(keyGroup, scope),
		},
	}}
	if err := c.Create(ctx, sar); err != nil {
		return false, fmt.Errorf("asking whether %q may grant %s: %w", user.Username, ScopeResourceName(keyGroup, scope), err)
	}
	return sar.Status.Allowed, nil
}

// Identity is the keyward.dev/grant-check value for user.
func Identity(user authenticationv1.UserInfo) (string, error) {
	b, err := json.Marshal(authenticationv1.UserInfo{Username: user.Username, UID: user.UID, Groups: user.Groups, Extra: user.Extra})
	return string(b), err
}

// ParseIdentity reads a keyward.dev/grant-check value.
func ParseIdentity(s string) (authenticationv1.UserInfo, error) {
	var u authenticationv1.UserInfo
	if err := json.Unmarshal([]byte(s), &u); err != nil || u.Username == "" {
		return u, fmt.Errorf("annotation %s does not hold an identity", keywardv1alpha1.AnnotationGrantCheck)
	}
	return u, nil
}
