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

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/index"
)

// A key created by a ServiceAccount stops working when that ServiceAccount
// is deleted: the admission webhook records the creator
// (keyward.dev/created-by: system:serviceaccount:<namespace>:<name>, and
// its UID in keyward.dev/created-by-uid), a metadata-only watch of
// ServiceAccounts reconciles the keys of one that goes away, and
// checkCreator revokes them.
//
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch

// ReasonCreatorDeleted is the reason of a key whose creator, a
// ServiceAccount, was deleted.
const ReasonCreatorDeleted = "CreatorDeleted"

// checkCreator revokes a key, unless decide found it done for already,
// when the ServiceAccount that created it is gone. It asks the API server:
// the cache may not have seen a ServiceAccount created a moment ago, and
// revoking is for good. When the creator's UID was recorded, a
// ServiceAccount of the same name with another UID is not the creator.
func (r *APIKeyReconciler) checkCreator(ctx context.Context, s *apiKeyScope) error {
	k := s.key
	if s.phase.Terminal() {
		return nil
	}
	sa, ok := index.CreatorServiceAccount(k)
	if !ok {
		return nil
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ServiceAccount"))
	err := r.APIReader.Get(ctx, sa, m)
	uid := k.Annotations[keywardv1alpha1.AnnotationCreatedByUID]
	switch {
	case apierrors.IsNotFound(err):
		s.set(keywardv1alpha1.APIKeyRevoked, ReasonCreatorDeleted, fmt.Sprintf("ServiceAccount %s, which created the key, was deleted; the key no longer works", sa))
	case err != nil:
		return fmt.Errorf("getting ServiceAccount %s, creator of APIKey %s/%s: %w", sa, k.Namespace, k.Name, err)
	case uid != "" && string(m.UID) != uid:
		s.set(keywardv1alpha1.APIKeyRevoked, ReasonCreatorDeleted, fmt.Sprintf("ServiceAccount %s, which created the key, was deleted (the one there now is another); the key no longer works", sa))
	default:
		return nil
	}
	s.requeue = 0
	return nil
}

// keysOfCreator maps a deleted ServiceAccount to the keys it created, in
// any namespace.
func (r *APIKeyReconciler) keysOfCreator(ctx context.Context, o client.Object) []ctrl.Request {
	var list keywardv1alpha1.APIKeyList
	if err := r.List(ctx, &list, client.MatchingFields{index.APIKeyCreator: client.ObjectKeyFromObject(o).String()}); err != nil {
		return nil
	}
	reqs := make([]ctrl.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}
