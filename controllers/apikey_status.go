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
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/record"
)

// writeStatus writes the status the phases decided, once, and only when it
// changed. It patches from the status as read, so lastUsedTime, which the
// verifier owns, is never overwritten. When a phase failed (failure), the
// status keeps the phase last achieved, which is still what the verifier
// does, and Synced reports the failure.
func (r *APIKeyReconciler) writeStatus(ctx context.Context, s *apiKeyScope, failure error) error {
	k := s.key
	synced, ok := syncedCondition(failure, k.Generation)
	if !ok {
		return nil
	}
	if failure != nil {
		k.Status = *s.orig.Status.DeepCopy()
		meta.SetStatusCondition(&k.Status.Conditions, synced)
		if errors.Is(failure, record.ErrInvalid) && s.hashed != nil {
			// The verifiers drop a record that does not decode: the key
			// does not work, whatever the phase said.
			meta.SetStatusCondition(&k.Status.Conditions, metav1.Condition{
				Type: keywardv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonRecordDamaged, ObservedGeneration: k.Generation,
				Message: fmt.Sprintf("hashed Secret %s/%s does not decode, so the verifiers refuse this key (401 unknown); restore it from a backup, or revoke the key and issue a new one (the Synced condition says what is wrong)",
					s.hashed.Namespace, s.hashed.Name),
			})
		}
		if written, err := r.patchStatus(ctx, s); !written || err != nil {
			return err
		}
		return waitForCache(ctx, r.Client, k, s.orig.ResourceVersion)
	}
	meta.SetStatusCondition(&k.Status.Conditions, synced)
	st := &k.Status
	st.Phase = s.phase
	st.ObservedGeneration = k.Generation
	st.CreatedBy = k.Annotations[keywardv1alpha1.AnnotationCreatedBy]
	st.ExpiresAt = k.Spec.ExpiresAt
	if s.minted() {
		// The current key's end, as its hashed record holds it: under
		// maxKeyLifetime a rotating key's term, else expiresAt.
		if rec, err := s.hashedRecord(); err == nil && !rec.ExpiresAt.IsZero() {
			st.ExpiresAt = &metav1.Time{Time: rec.ExpiresAt}
		}
		st.KeyID = string(s.hashed.Data[record.DataKeyID])
		st.SecretName = k.DeliverySecretName()
		st.Rotation = rotationStatus(s)
	}
	setRotated(s)
	status := metav1.ConditionFalse
	if s.phase == keywardv1alpha1.APIKeyActive {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type:               keywardv1alpha1.ConditionReady,
		Status:             status,
		Reason:             s.reason,
		Message:            s.message,
		ObservedGeneration: k.Generation,
	})
	if written, err := r.patchStatus(ctx, s); !written || err != nil {
		return err
	}
	r.recordTransition(s)
	return waitForCache(ctx, r.Client, k, s.orig.ResourceVersion)
}

// patchStatus writes s.key's status if it differs from the one read, and
// reports whether it did.
func (r *APIKeyReconciler) patchStatus(ctx context.Context, s *apiKeyScope) (bool, error) {
	k := s.key
	if equality.Semantic.DeepEqual(s.orig.Status, k.Status) {
		return false, nil
	}
	if err := r.Status().Patch(ctx, k, client.MergeFrom(s.orig)); err != nil {
		return false, fmt.Errorf("writing the status of APIKey %s/%s: %w", k.Namespace, k.Name, err)
	}
	return true, nil
}

// recordTransition emits an event when the phase changed.
func (r *APIKeyReconciler) recordTransition(s *apiKeyScope) {
	from, to := s.orig.Status.Phase, s.phase
	if from == to {
		return
	}
	var reason, note string
	eventType := corev1.EventTypeNormal
	switch to {
	case keywardv1alpha1.APIKeyActive:
		if from != keywardv1alpha1.APIKeyDisabled {
			return // Issued was recorded when the key was minted
		}
		reason, note = EventEnabled, "Key switched on"
	case keywardv1alpha1.APIKeyDisabled:
		reason, note = EventDisabled, "Key switched off"
	case keywardv1alpha1.APIKeyRevoked:
		reason, note = EventRevoked, s.message
	case keywardv1alpha1.APIKeyExpired:
		reason, note = EventExpired, s.message
	case keywardv1alpha1.APIKeyRejected:
		reason, note, eventType = EventRejected, s.message, corev1.EventTypeWarning
	default:
		return
	}
	r.Recorder.Eventf(s.key, nil, eventType, reason, "Reconcile", "%s", note)
}

func readyCondition(k *keywardv1alpha1.APIKey) *metav1.Condition {
	return meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady)
}

func readyReason(k *keywardv1alpha1.APIKey) string {
	if c := readyCondition(k); c != nil {
		return c.Reason
	}
	return string(k.Status.Phase)
}

func readyMessage(k *keywardv1alpha1.APIKey) string {
	if c := readyCondition(k); c != nil {
		return c.Message
	}
	return ""
}
