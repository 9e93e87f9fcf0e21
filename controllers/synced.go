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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

// Reasons of the Synced condition.
const (
	ReasonReconciled     = "Reconciled"
	ReasonReconcileError = "ReconcileError"
)

// maxSyncedMessage bounds the error text kept in the Synced condition.
const maxSyncedMessage = 1024

// syncedCondition reports how the last reconcile ended. Conflicts are left
// out (ok false): they are optimistic concurrency doing its job, retried at
// once, and reporting them would only make the status flap.
func syncedCondition(err error, generation int64) (c metav1.Condition, ok bool) {
	if err != nil && apierrors.IsConflict(err) {
		return c, false
	}
	c = metav1.Condition{
		Type: keywardv1alpha1.ConditionSynced, Status: metav1.ConditionTrue,
		Reason: ReasonReconciled, Message: "the last reconcile succeeded", ObservedGeneration: generation,
	}
	if err != nil {
		msg := redactKeys(err.Error())
		if len(msg) > maxSyncedMessage {
			msg = msg[:maxSyncedMessage] + "…"
		}
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonReconcileError, msg+"; retrying with backoff"
	}
	return c, true
}
