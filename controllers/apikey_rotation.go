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
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/internal/rules"
)

// Rotation events and the reasons of the Rotated condition.
const (
	EventRotationStarted         = "RotationStarted"
	EventRotated                 = "Rotated"
	EventRotationRefused         = "RotationRefused"
	EventDeliverySecretReplaced  = "DeliverySecretReplaced"
	ReasonRotated                = "Rotated"
	ReasonPromoting              = "Promoting"
	ReasonRotationGrantRevoked   = "GrantRevoked"
	ReasonRotationSecretConflict = "DeliverySecretConflict"
	ReasonRotationWaiting        = "PreviousKeyInOverlap"
	EventRotationWaiting         = "RotationWaiting"
	EventSuccessorReplaced       = "SuccessorReplaced"
)

// DeliveryNextKey is the delivery Secret's data key holding a rotation's
// successor while it is staged: consumers read only api-key.
const DeliveryNextKey = "api-key-next"

// DefaultPromoteAfter is how long after a successor's digest is written to
// the hashed Secret it is promoted to api-key: the time the verifiers'
// watches take to deliver the write, with a wide margin.
const DefaultPromoteAfter = 2 * time.Second

// A rotation, in order, each step resuming from what the last one left:
//
//  1. stage: a new successor's plaintext goes to the delivery Secret as
//     api-key-next, replacing anything there (a successor staged by an
//     interrupted rotation never worked, and one written by someone else
//     must never become a key);
//  2. commit: the hashed Secret makes the successor current and keeps the
//     previous key until the end of the overlap, marked rotating, with the
//     trigger handled; one write, after which the trigger never fires again;
//  3. promote: once the verifiers have had PromoteAfter to see the commit,
//     api-key-next becomes api-key in the delivery Secret, and the hashed
//     Secret stops being marked rotating.
//
// A consumer reading api-key thus never sees a key that does not verify, and
// a crash between any two steps leaves at most one successor that works:
// the one committed.
func (r *APIKeyReconciler) rotate(ctx context.Context, s *apiKeyScope) error {
	if !s.minted() || (s.phase != keywardv1alpha1.APIKeyActive && s.phase != keywardv1alpha1.APIKeyDisabled) {
		return nil
	}
	rec, err := s.hashedRecord()
	if err != nil {
		return err
	}
	if rec.Rotating {
		return r.promote(ctx, s, rec)
	}
	request, due := rotationDue(s, rec)
	if !due {
		settle(s, rec)
		return nil
	}
	if p, end := rec.Previous, rec.PreviousEnd(); p != nil && s.now.Before(end) {
		// The record holds one previous key. Rotating now would end this
		// one before the time its rotation announced, cutting off the
		// consumers that have not moved yet: the rotation waits.
		r.hold(s, ReasonRotationWaiting, corev1.EventTypeNormal, EventRotationWaiting, fmt.Sprintf(
			"key %s works until %s, as its rotation announced; the rotation requested starts then. To stop every key of this APIKey now, set spec.revoked",
			p.KeyID, end.UTC().Format(time.RFC3339)), end)
		return nil
	}
	if ok, why, err := r.rotationMayGrant(ctx, s); err != nil || !ok {
		if err == nil {
			r.hold(s, ReasonRotationGrantRevoked, corev1.EventTypeWarning, EventRotationRefused,
				why+"; the rotation is refused and "+currentKeyEnd(s), s.now.Add(time.Minute))
		}
		return err
	}
	next, err := r.stage(ctx, s)
	if err != nil || next == nil {
		return err
	}
	return r.commit(ctx, s, rec, next, request)
}

// hold keeps a due rotation from starting: the Rotated condition says why,
// an event says it once (not again while the reason stays), and the key is
// looked at again at until.
func (r *APIKeyReconciler) hold(s *apiKeyScope, reason, eventType, event, message string, until time.Time) {
	s.rotation = &metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: message}
	if c := meta.FindStatusCondition(s.key.Status.Conditions, keywardv1alpha1.ConditionRotated); c == nil || c.Reason != reason {
		r.Recorder.Eventf(s.key, nil, eventType, event, "Rotate", "%s", message)
	}
	s.requeueBy(until)
}

// rotationDue says whether a rotation is due: on request (a
// keyward.dev/rotate value not handled before, returned) or on schedule.
func rotationDue(s *apiKeyScope, rec *record.Record) (request string, due bool) {
	if v := s.key.Annotations[keywardv1alpha1.AnnotationRotate]; v != "" && !rec.Handled(v) {
		return v, true
	}
	if rot := s.key.Spec.Rotation; rot != nil {
		next := issuedAt(s, rec).Add(rot.Every.Duration)
		if !s.now.Before(next) {
			return "", true
		}
		s.requeueBy(next)
	}
	return "", false
}

// issuedAt is when the current key was minted: the record says, or, for a
// record written before it did, the hashed Secret's creation.
func issuedAt(s *apiKeyScope, rec *record.Record) time.Time {
	if !rec.IssuedAt.IsZero() {
		return rec.IssuedAt
	}
	if t := s.hashed.CreationTimestamp.Time; !t.IsZero() {
		return t
	}
	return s.now
}

// currentKeyEnd says, for a rotation held, how long the current key
// works.
func currentKeyEnd(s *apiKeyScope) string {
	rec, err := s.hashedRecord() // decoded once per reconcile
	if err != nil {
		return "the current key keeps working to its end"
	}
	end := rules.KeyEnd(s.key, s.group, issuedAt(s, rec))
	switch {
	case end.IsZero():
		return "the current key keeps working"
	case s.now.Before(end):
		return "the current key works until " + end.UTC().Format(time.RFC3339)
	}
	return "the current key stopped working at " + end.UTC().Format(time.RFC3339) + ", its end; the rotation issues a new one"
}

// stage puts a successor in the delivery Secret's api-key-next and returns
// it: the one staged already, or a new one. It returns nil, with the reason
// in s, when the Secret is someone else's.
func (r *APIKeyReconciler) stage(ctx context.Context, s *apiKeyScope) (*keys.Key, error) {
	name := s.key.DeliverySecretName()
	secret := &corev1.Secret{}
	switch err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.key.Namespace, Name: name}, secret); {
	case apierrors.IsNotFound(err):
		// Deleted since the key was delivered: the rotation delivers the
		// successor to a new one.
		k, err := keys.Generate(s.group.Prefix())
		if err != nil {
			return nil, err
		}
		return &k, r.createDelivery(ctx, s, map[string][]byte{DeliveryNextKey: []byte(k.Plaintext())}, k.Plaintext())
	case err != nil:
		return nil, fmt.Errorf("getting delivery Secret %s/%s: %w", s.key.Namespace, name, err)
	}
	if !metav1.IsControlledBy(secret, s.key) {
		s.rotation = &metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonRotationSecretConflict, Message: fmt.Sprintf(
			"Secret %s does not belong to this APIKey; the rotation waits until it is deleted (it resumes within %s), and %s", name, conflictRequeue, currentKeyEnd(s))}
		s.requeueBy(s.now.Add(conflictRequeue))
		return nil, nil
	}
	// Whatever api-key-next holds is replaced, never reused: a successor
	// staged by a rotation interrupted before its commit never worked, and
	// one written by anyone else must never become a key. Only the key
	// generated here is committed (by its digest) and promoted.
	k, err := keys.Generate(s.group.Prefix())
	if err != nil {
		return nil, err
	}
	if secret.Immutable != nil && *secret.Immutable {
		return &k, r.replaceImmutable(ctx, s, secret, k)
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{} // emptied by someone: nothing to keep
	}
	secret.Data[DeliveryNextKey] = []byte(k.Plaintext())
	if err := r.Update(ctx, secret, client.FieldOwner(FieldManager)); err != nil {
		return nil, fmt.Errorf("staging the successor in delivery Secret %s/%s: %w", s.key.Namespace, name, redactPlaintext(err, k.Plaintext()))
	}
	return &k, nil
}

// replaceImmutable recreates an immutable delivery Secret (as keyward
// created them before rotation existed) as a mutable one, the current key
// kept and the successor staged. Pods that mount it see the new Secret only
// once restarted: the kubelet never refreshes an immutable one.
func (r *APIKeyReconciler) replaceImmutable(ctx context.Context, s *apiKeyScope, old *corev1.Secret, next keys.Key) error {
	name := old.Name
	data := map[string][]byte{DeliveryNextKey: []byte(next.Plaintext())}
	for _, k := range []string{record.DeliveryAPIKey, record.DeliveryKeyID} {
		if v, ok := old.Data[k]; ok {
			data[k] = v
		}
	}
	if err := r.recreateDelivery(ctx, s, old, data, next.Plaintext()); err != nil {
		return err
	}
	r.Recorder.Eventf(s.key, nil, corev1.EventTypeNormal, EventDeliverySecretReplaced, "Rotate",
		"Delivery Secret %s was immutable, which the kubelet never refreshes; replaced by a mutable one: restart pods that mount it to see rotated keys", name)
	return nil
}

// recreateDelivery replaces the delivery Secret old, which cannot be
// rewritten in place (immutable, or of another type), by a new one holding
// data. The delete is made only if old is still what was read.
func (r *APIKeyReconciler) recreateDelivery(ctx context.Context, s *apiKeyScope, old *corev1.Secret, data map[string][]byte, plaintext string) error {
	if err := r.Delete(ctx, old, client.Preconditions{UID: &old.UID, ResourceVersion: &old.ResourceVersion}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting delivery Secret %s/%s to replace it: %w", old.Namespace, old.Name, err)
	}
	return r.createDelivery(ctx, s, data, plaintext)
}

// createDelivery creates the delivery Secret with data; plaintext is
// redacted from any error.
func (r *APIKeyReconciler) createDelivery(ctx context.Context, s *apiKeyScope, data map[string][]byte, plaintext string) error {
	secret := deliverySecret(s, data)
	if err := r.Create(ctx, secret, client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("creating delivery Secret %s/%s: %w", secret.Namespace, secret.Name, redactPlaintext(err, plaintext))
	}
	return nil
}

// commit makes next the current key in the hashed Secret, the key it
// replaces working until the overlap ends, and marks the trigger handled.
func (r *APIKeyReconciler) commit(ctx context.Context, s *apiKeyScope, rec *record.Record, next *keys.Key, request string) error {
	end := s.now.Add(s.key.RotationOverlap()).Truncate(time.Second)
	// The key ends no later than it would have without the rotation: the
	// APIKey's expiry, or the end of a rotating key's term.
	if stop := rules.KeyEnd(s.key, s.group, issuedAt(s, rec)); !stop.IsZero() && stop.Before(end) {
		end = stop
	}
	prev := &record.Previous{Digest: rec.Digest, KeyID: rec.KeyID, EndsAt: end}
	if err := r.makeLive(ctx, s, prev, next, request); err != nil {
		return err
	}
	logf.FromContext(ctx).Info("Key rotation started", "keyID", next.ID(), "previousKeyID", rec.KeyID, "previousEndsAt", end)
	r.Recorder.Eventf(s.key, nil, corev1.EventTypeNormal, EventRotationStarted, "Rotate",
		"Key %s staged in Secret %s and live; key %s works until %s", next.ID(), s.key.DeliverySecretName(), rec.KeyID, end.UTC().Format(time.RFC3339))
	return nil
}

// makeLive writes next into the hashed Secret as the current key, staged
// and not yet promoted, with prev as the previous key, and the trigger
// request (if any) handled.
func (r *APIKeyReconciler) makeLive(ctx context.Context, s *apiKeyScope, prev *record.Previous, next *keys.Key, request string) error {
	want, err := r.desiredRecord(s)
	if err != nil {
		return err
	}
	want.Previous = prev
	want.Digest, want.KeyID, want.IssuedAt, want.Rotating = next.Digest(), next.ID(), s.now.Truncate(time.Second), true
	want.ExpiresAt = rules.KeyEnd(s.key, s.group, want.IssuedAt)
	if request != "" {
		want.AddRequest(request)
	}
	secret, err := r.patchHashedSecret(ctx, s, want)
	if err != nil {
		return err
	}
	s.hashed = secret
	s.rotation = &metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonPromoting, Message: fmt.Sprintf(
		"key %s is live and staged as %s; it becomes %s once the verifiers have it", next.ID(), DeliveryNextKey, record.DeliveryAPIKey)}
	s.requeueBy(s.now.Add(r.promoteAfter()))
	return nil
}

// replaceLost replaces the successor rec makes current, which left the
// delivery Secret before it was promoted, by a new one staged in its place;
// the previous key keeps its end. The lost successor was never handed to a
// consumer, but anyone who read api-key-next before the Secret was deleted
// or changed holds it: it stops working now, and the consumers get their
// next key without waiting for the previous one to end.
func (r *APIKeyReconciler) replaceLost(ctx context.Context, s *apiKeyScope, rec *record.Record) error {
	next, err := r.stage(ctx, s)
	if err != nil || next == nil {
		return err
	}
	if err := r.makeLive(ctx, s, rec.Previous, next, ""); err != nil {
		return err
	}
	msg := fmt.Sprintf("Delivery Secret %s was deleted or changed before key %s was promoted; key %s, staged and live, replaces it, and key %s stopped working",
		s.key.DeliverySecretName(), rec.KeyID, next.ID(), rec.KeyID)
	logf.FromContext(ctx).Info("Lost successor replaced", "keyID", next.ID(), "lostKeyID", rec.KeyID)
	r.Recorder.Eventf(s.key, nil, corev1.EventTypeWarning, EventSuccessorReplaced, "Rotate", "%s", msg)
	return nil
}

// promote moves the successor from api-key-next to api-key, once the
// verifiers have had time to see it, and ends the rotation.
func (r *APIKeyReconciler) promote(ctx context.Context, s *apiKeyScope, rec *record.Record) error {
	if at := rec.IssuedAt.Add(r.promoteAfter()); s.now.Before(at) {
		s.requeueBy(at)
		return nil
	}
	prevID, prevEnd := "", ""
	if p := rec.Previous; p != nil {
		prevID, prevEnd = p.KeyID, rec.PreviousEnd().UTC().Format(time.RFC3339)
	}
	name := s.key.DeliverySecretName()
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.key.Namespace, Name: name}, secret)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("getting delivery Secret %s/%s: %w", s.key.Namespace, name, err)
	}
	next, _ := keys.Parse(string(secret.Data[DeliveryNextKey]))
	current, _ := keys.Parse(string(secret.Data[record.DeliveryAPIKey]))
	switch {
	case err == nil && metav1.IsControlledBy(secret, s.key) && next.Digest() == rec.Digest:
		delete(secret.Data, DeliveryNextKey)
		secret.Data[record.DeliveryAPIKey] = []byte(next.Plaintext())
		secret.Data[record.DeliveryKeyID] = []byte(next.ID())
		if err := r.Update(ctx, secret, client.FieldOwner(FieldManager)); err != nil {
			return fmt.Errorf("promoting the successor in delivery Secret %s/%s: %w", s.key.Namespace, name, redactPlaintext(err, next.Plaintext()))
		}
	case err == nil && current.Digest() == rec.Digest:
		// Promoted before a crash.
	default:
		// The Secret went, or was changed, between commit and promotion:
		// the successor left it unpromoted. It is replaced, not kept.
		return r.replaceLost(ctx, s, rec)
	}
	if err := r.endRotation(ctx, s); err != nil {
		return err
	}
	logf.FromContext(ctx).Info("Key rotated", "keyID", rec.KeyID, "secret", name)
	r.Recorder.Eventf(s.key, nil, corev1.EventTypeNormal, EventRotated, "Rotate",
		"Key %s promoted in Secret %s; key %s works until %s", rec.KeyID, name, prevID, prevEnd)
	s.rotation = rotatedCondition(rec, s.now)
	return nil
}

// rotatedCondition is the Rotated condition of a completed rotation, as
// the record holds it.
func rotatedCondition(rec *record.Record, now time.Time) *metav1.Condition {
	prevID, end, works := "", rec.PreviousEnd(), "works until"
	if rec.Previous != nil {
		prevID = rec.Previous.KeyID
	}
	if !now.Before(end) {
		works = "stopped working at"
	}
	return &metav1.Condition{Status: metav1.ConditionTrue, Reason: ReasonRotated, Message: fmt.Sprintf(
		"key %s replaced key %s, which %s %s", rec.KeyID, prevID, works, end.UTC().Format(time.RFC3339))}
}

// settle ends a hold once no rotation is due (the request withdrawn, or
// the schedule changed): the Rotated condition goes back to the last
// rotation's, or goes if the key never rotated, instead of announcing a
// rotation that will not come.
func settle(s *apiKeyScope, rec *record.Record) {
	c := meta.FindStatusCondition(s.key.Status.Conditions, keywardv1alpha1.ConditionRotated)
	if c == nil || c.Status == metav1.ConditionTrue {
		return
	}
	if rec.Previous != nil {
		s.rotation = rotatedCondition(rec, s.now)
		return
	}
	meta.RemoveStatusCondition(&s.key.Status.Conditions, keywardv1alpha1.ConditionRotated)
}

// endRotation clears the rotating mark in the hashed Secret.
func (r *APIKeyReconciler) endRotation(ctx context.Context, s *apiKeyScope) error {
	want, err := r.desiredRecord(s)
	if err != nil {
		return err
	}
	want.Rotating = false
	secret, err := r.patchHashedSecret(ctx, s, want)
	if err != nil {
		return err
	}
	s.hashed = secret
	return nil
}

func (r *APIKeyReconciler) promoteAfter() time.Duration {
	if r.PromoteAfter > 0 {
		return r.PromoteAfter
	}
	return DefaultPromoteAfter
}

// requeueBy makes the reconcile come back by t at the latest.
func (s *apiKeyScope) requeueBy(t time.Time) {
	d := max(t.Sub(s.now), time.Second)
	if s.requeue == 0 || d < s.requeue {
		s.requeue = d
	}
}

// rotationStatus is status.rotation as the hashed record and the spec say;
// the previous key's last use is the verifier's, kept as it is, except when
// a rotation has just made a new previous key: then status.lastUsedTime,
// the replaced key's, moves there.
func rotationStatus(s *apiKeyScope) *keywardv1alpha1.APIKeyRotationStatus {
	st := s.key.Status.Rotation.DeepCopy()
	rec, err := s.hashedRecord()
	if err != nil {
		return st
	}
	v, hasRequest := s.key.Annotations[keywardv1alpha1.AnnotationRotate]
	if st == nil && s.key.Spec.Rotation == nil && rec.Previous == nil && !hasRequest {
		return nil
	}
	if st == nil {
		st = &keywardv1alpha1.APIKeyRotationStatus{}
	}
	if p := rec.Previous; p != nil {
		st.RotatedAt = &metav1.Time{Time: rec.IssuedAt}
		if st.PreviousKeyID != p.KeyID {
			// A new previous key: until this rotation it was the
			// current one, whose uses lastUsedTime recorded. They move
			// with it, so that neither generation is credited with the
			// other's (identify, unused, and consumers seen to move).
			st.PreviousKeyLastUsedTime = s.key.Status.LastUsedTime
			s.key.Status.LastUsedTime = nil
		}
		st.PreviousKeyID, st.PreviousKeyExpiresAt = p.KeyID, &metav1.Time{Time: rec.PreviousEnd()}
	}
	st.NextRotationAt = nil
	if rot := s.key.Spec.Rotation; rot != nil {
		st.NextRotationAt = &metav1.Time{Time: issuedAt(s, rec).Add(rot.Every.Duration).Truncate(time.Second)}
	}
	// A value admission would refuse now (one set before it did) is not
	// echoed: kubectl prints status as it is.
	if hasRequest && rec.Handled(v) && rules.RotateRequestProblem(v) == "" {
		st.LastRotateRequest = v
	}
	return st
}

// setRotated sets the Rotated condition a rotation step decided.
func setRotated(s *apiKeyScope) {
	if s.rotation == nil {
		return
	}
	c := *s.rotation
	c.Type, c.ObservedGeneration = keywardv1alpha1.ConditionRotated, s.key.Generation
	meta.SetStatusCondition(&s.key.Status.Conditions, c)
}
