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
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
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

// redactKeys blanks anything shaped like a keyward key. Error text comes
// from the API server and from admission webhooks and policies of others;
// one that echoed a delivery Secret's data must not carry the plaintext
// into a status, a log line or an event.
func redactKeys(s string) string {
	return keyShaped.ReplaceAllString(s, redacted)
}

var keyShaped = regexp.MustCompile(keys.Regexp)

const redacted = "[redacted key]"

// redactPlaintext replaces err when its text holds plaintext, as is or in
// base64 (as a Secret's data is written in JSON): the original, and
// anything that unwraps to it, must not reach a log or a status.
func redactPlaintext(err error, plaintext string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	r := strings.ReplaceAll(msg, plaintext, redacted)
	r = strings.ReplaceAll(r, base64.StdEncoding.EncodeToString([]byte(plaintext)), redacted)
	if r = redactKeys(r); r != msg {
		return errors.New(r)
	}
	return err
}

// rateLimiter spaces the retries of a failing reconcile: 5 ms doubling to
// at most one minute per object (client-go's default waits up to 16
// minutes, which would leave a key Pending that long after an API server
// outage), and 10 retries a second overall with bursts of 100.
func rateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, time.Minute),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}
