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
	"maps"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/go-logr/logr"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/internal/rules"
)

// Event reasons.
const (
	EventIssued   = "Issued"
	EventDisabled = "Disabled"
	EventEnabled  = "Enabled"
	EventRevoked  = "Revoked"
	EventExpired  = "Expired"
	EventRejected = "Rejected"
)

// mint makes the key exist: a new key goes to the delivery Secret first,
// then its digest to the hashed Secret. Only a key this reconcile generated
// is ever hashed: a plaintext found in a Secret is not, whoever wrote it (the
// owner reference that makes a Secret this key's can be set by anyone who
// may write Secrets in the namespace). A crash between the two writes leaves
// a plaintext that never worked; the next reconcile replaces it with a new
// key. Once the hashed Secret exists the key is never minted again.
func (r *APIKeyReconciler) mint(ctx context.Context, s *apiKeyScope) error {
	log := logf.FromContext(ctx)
	key, err := r.deliver(ctx, s)
	if err != nil || key == nil {
		return err
	}
	want, err := r.desiredRecord(s)
	if err != nil {
		return err
	}
	want.Digest = key.Digest()
	want.KeyID = key.ID()
	secret, existed, err := r.createHashedSecret(ctx, s, want)
	if err != nil {
		return err
	}
	s.hashed = secret
	if existed {
		log.V(1).Info("Hashed Secret existed already; the key just delivered is its key", "keyID", want.KeyID, "secret", secret.Name)
	}
	log.Info("Key issued", "keyID", want.KeyID, "secret", s.key.DeliverySecretName())
	r.Recorder.Eventf(s.key, nil, corev1.EventTypeNormal, EventIssued, "Issue",
		"Key %s issued to Secret %s", want.KeyID, s.key.DeliverySecretName())
	return nil
}

// deliver writes a new key to the delivery Secret. It returns a nil key
// when there is nothing to mint (the key was minted a moment ago, by a
// reconcile the cache has not caught up with, and s.hashed now holds it) or,
// with the reason in s, when the key cannot be issued.
//
// The delivery Secret is created, not applied: the plaintext must never be
// merged into a Secret someone else made. One that exists already and is
// this key's, holding no key keyward recorded, gets a new key in place of
// whatever it holds (rewriteDelivery); a key minted before (status.keyID
// set) whose hashed Secret is gone never gets a new one.
func (r *APIKeyReconciler) deliver(ctx context.Context, s *apiKeyScope) (*keys.Key, error) {
	name := s.key.DeliverySecretName()
	if s.key.Status.KeyID != "" {
		if minted, err := r.mintedLive(ctx, s); err != nil || minted {
			return nil, err
		}
		// The hashed Secret was the only record that made the key valid,
		// and it was deleted: never mint a second key for the same APIKey.
		s.set(keywardv1alpha1.APIKeyRejected, ReasonKeyLost, fmt.Sprintf(
			"key %s was issued, but its hashed Secret, the record that made it valid, was deleted; the key no longer works: create a new APIKey", s.key.Status.KeyID))
		return nil, nil
	}
	k, err := r.createDeliverySecret(ctx, s)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return k, err
	}
	existing := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.key.Namespace, Name: name}, existing); err != nil {
		return nil, fmt.Errorf("getting delivery Secret %s/%s: %w", s.key.Namespace, name, err)
	}
	if !metav1.IsControlledBy(existing, s.key) {
		s.set(keywardv1alpha1.APIKeyPending, ReasonDeliverySecretConflict, fmt.Sprintf(
			"Secret %s exists and does not belong to this APIKey; delete it (issuance resumes within %s), or create a new APIKey with another spec.secretName", name, conflictRequeue))
		// Delivery Secrets are not watched: look again for the one in the
		// way to be gone.
		s.requeueBy(s.now.Add(conflictRequeue))
		return nil, nil
	}
	if minted, err := r.mintedLive(ctx, s); err != nil || minted {
		return nil, err
	}
	return r.rewriteDelivery(ctx, s, existing)
}

// rewriteDelivery puts a new key in a delivery Secret of this key's that
// holds no key keyward recorded: one an interrupted reconcile wrote, which
// never worked, or one someone else wrote, which must never become a key.
// Everything it held is replaced.
func (r *APIKeyReconciler) rewriteDelivery(ctx context.Context, s *apiKeyScope, existing *corev1.Secret) (*keys.Key, error) {
	k, err := keys.Generate(s.group.Prefix())
	if err != nil {
		return nil, fmt.Errorf("generating a key for APIKey %s/%s: %w", s.key.Namespace, s.key.Name, err)
	}
	data := map[string][]byte{record.DeliveryAPIKey: []byte(k.Plaintext()), record.DeliveryKeyID: []byte(k.ID())}
	want := deliverySecret(s, data)
	if (existing.Immutable != nil && *existing.Immutable) || existing.Type != want.Type {
		return &k, r.recreateDelivery(ctx, s, existing, data, k.Plaintext())
	}
	existing.Labels = want.Labels
	existing.Data, existing.StringData = data, nil
	if err := r.Update(ctx, existing, client.FieldOwner(FieldManager)); err != nil {
		return nil, fmt.Errorf("writing a new key to delivery Secret %s/%s: %w", existing.Namespace, existing.Name, redactPlaintext(err, k.Plaintext()))
	}
	return &k, nil
}

// createDeliverySecret mints a key and creates the delivery Secret holding
// it. Its error is AlreadyExists when a Secret of that name exists.
func (r *APIKeyReconciler) createDeliverySecret(ctx context.Context, s *apiKeyScope) (*keys.Key, error) {
	name := s.key.DeliverySecretName()
	k, err := keys.Generate(s.group.Prefix())
	if err != nil {
		return nil, fmt.Errorf("generating a key for APIKey %s/%s: %w", s.key.Namespace, s.key.Name, err)
	}
	secret := deliverySecret(s, map[string][]byte{
		record.DeliveryAPIKey: []byte(k.Plaintext()),
		record.DeliveryKeyID:  []byte(k.ID()),
	})
	if err := r.Create(ctx, secret, client.FieldOwner(FieldManager)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		// The error names the Secret. The API server never echoes Secret
		// data, but an admission webhook or policy of someone else's
		// might: such an error is redacted before it goes anywhere.
		return nil, fmt.Errorf("creating delivery Secret %s/%s: %w", s.key.Namespace, name, redactPlaintext(err, k.Plaintext()))
	}
	return &k, nil
}

// deliverySecret is the key's delivery Secret holding data, owned by the
// APIKey (so it goes with it) and mutable (so a rotation rewrites it in
// place, and the kubelet refreshes mounted copies).
func deliverySecret(s *apiKeyScope, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.key.Namespace,
			Name:      s.key.DeliverySecretName(),
			Labels: map[string]string{
				keywardv1alpha1.LabelManagedBy: keywardv1alpha1.ManagedBy,
				record.LabelAPIKey:             s.key.Name,
				record.LabelApplication:        string(s.key.Spec.Application),
			},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(s.key, keywardv1alpha1.GroupVersion.WithKind("APIKey"))},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

// desiredRecord is the verification record the key's phase calls for. The
// digest and key ID come from the existing hashed Secret: they never change.
func (r *APIKeyReconciler) desiredRecord(s *apiKeyScope) (*record.Record, error) {
	k := s.key
	rec := &record.Record{
		Namespace:   k.Namespace,
		Application: string(k.Spec.Application),
		APIKey:      k.Name,
		State:       stateOf(s.phase),
	}
	if s.app != nil {
		rec.KeyGroup = string(s.app.Spec.KeyGroup)
		rec.ExternalID = s.app.Spec.ExternalID
		rec.ApplicationUID = string(s.app.UID)
	}
	if s.group != nil {
		rec.KeyGroupUID = string(s.group.UID)
	}
	for _, sc := range k.Spec.Scopes {
		rec.Scopes = append(rec.Scopes, string(sc))
	}
	for _, c := range k.Spec.AllowedSourceRanges {
		p, err := netip.ParsePrefix(string(c))
		if err != nil {
			return nil, fmt.Errorf("spec.allowedSourceRanges of APIKey %s/%s: %q is not a CIDR", k.Namespace, k.Name, c)
		}
		rec.SourceRanges = append(rec.SourceRanges, p.Masked())
	}
	if s.hashed == nil {
		// Being minted: the rotate request there now is not one.
		rec.IssuedAt = s.now.Truncate(time.Second)
		if v := k.Annotations[keywardv1alpha1.AnnotationRotate]; v != "" {
			rec.AddRequest(v)
		}
	} else {
		old, err := s.hashedRecord()
		if err != nil {
			return nil, err
		}
		// A minted key keeps its group and the UIDs it is bound to; a
		// record written before keys were bound by UID is bound now, to
		// parents that decide has found to be the ones it names.
		rec.Digest, rec.KeyID, rec.KeyGroup = old.Digest, old.KeyID, old.KeyGroup
		// The previous key of the last rotation stays until the next one:
		// the verifiers refuse it by themselves once its overlap ends, as
		// expired, which tells its last users what happened.
		rec.IssuedAt, rec.Rotating, rec.RotateRequests, rec.Previous = issuedAt(s, old), old.Rotating, slices.Clone(old.RotateRequests), old.Previous
		if old.ApplicationUID != "" {
			rec.ApplicationUID = old.ApplicationUID
		}
		if old.KeyGroupUID != "" {
			rec.KeyGroupUID = old.KeyGroupUID
		}
	}
	rec.ExpiresAt = rules.KeyEnd(k, s.group, rec.IssuedAt)
	return rec, nil
}

// hashedSecretUpToDate reports whether the cached hashed Secret already
// holds want, so that a resync writes nothing.
func hashedSecretUpToDate(secret *corev1.Secret, want *record.Record, uid string) bool {
	data := want.Data()
	if len(secret.Data) != len(data) {
		return false
	}
	for k, v := range data {
		if string(secret.Data[k]) != v {
			return false
		}
	}
	for k, v := range want.Labels(uid) {
		if secret.Labels[k] != v {
			return false
		}
	}
	return true
}

// hashedSecret is the hashed Secret holding rec, with only the fields
// keyward owns.
func (r *APIKeyReconciler) hashedSecret(key *keywardv1alpha1.APIKey, rec *record.Record) *corev1.Secret {
	labels := rec.Labels(string(key.UID))
	labels[keywardv1alpha1.LabelManagedBy] = keywardv1alpha1.ManagedBy
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: r.Namespace, Name: record.SecretName(string(key.UID)), Labels: labels,
			Annotations: map[string]string{annotationHashedAPIKey: key.Namespace + "/" + key.Name},
		},
		Type: corev1.SecretTypeOpaque,
		Data: rec.SecretData(),
	}
}

// annotationHashedAPIKey names, on a hashed Secret, the APIKey it verifies
// (<namespace>/<name>); the label of the same name holds its name alone.
const annotationHashedAPIKey = record.LabelAPIKey

// createHashedSecret creates the hashed Secret of a key being minted. A
// create, not a server-side apply: on the issuance path the API server's
// apply bookkeeping (reading the object first, merging field sets) costs
// more than the create itself, for a Secret only keyward writes (see
// BENCHMARKS.md, C4). When one exists already (minted by a reconcile the
// cache had not caught up with), existed is true and, should its digest be
// another key's, the key just delivered replaces it, as minting always did.
func (r *APIKeyReconciler) createHashedSecret(ctx context.Context, s *apiKeyScope, rec *record.Record) (secret *corev1.Secret, existed bool, err error) {
	secret = r.hashedSecret(s.key, rec)
	err = r.Create(ctx, secret, client.FieldOwner(FieldManager))
	switch {
	case err == nil:
		return secret, false, nil
	case !apierrors.IsAlreadyExists(err):
		return nil, false, fmt.Errorf("creating hashed Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	live := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(secret), live); err != nil {
		return nil, true, fmt.Errorf("getting hashed Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	if old, err := record.Decode(live.Data); err == nil && old.Digest == rec.Digest {
		return live, true, nil
	}
	s.hashed = live
	secret, err = r.patchHashedSecret(ctx, s, rec)
	return secret, true, err
}

// patchHashedSecret brings the hashed Secret s.hashed to rec with a merge
// patch computed against it: keyward's labels and annotation set, its data
// replaced whole (keys rec no longer has are removed). Against a copy read
// from the API server or the cache the patch carries its resourceVersion,
// so that one computed from a stale copy fails and is retried rather than
// leaving a removed key behind.
func (r *APIKeyReconciler) patchHashedSecret(ctx context.Context, s *apiKeyScope, rec *record.Record) (*corev1.Secret, error) {
	want := r.hashedSecret(s.key, rec)
	base := s.hashed
	secret := base.DeepCopy()
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	maps.Copy(secret.Labels, want.Labels)
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	maps.Copy(secret.Annotations, want.Annotations)
	secret.Data = want.Data
	var opts []client.MergeFromOption
	if base.ResourceVersion != "" {
		opts = append(opts, client.MergeFromWithOptimisticLock{})
	}
	if err := r.Patch(ctx, secret, client.MergeFromWithOptions(base, opts...), client.FieldOwner(FieldManager)); err != nil {
		return nil, fmt.Errorf("patching hashed Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	return secret, nil
}

func (r *APIKeyReconciler) deleteHashedSecret(ctx context.Context, key *keywardv1alpha1.APIKey) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: record.SecretName(string(key.UID))}}
	if err := r.Delete(ctx, secret); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting hashed Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	return nil
}

// withoutBodies returns ctx with its logger unable to log at client-go's
// request and response body verbosity (8 and up). client-go dumps the
// bodies it sends and receives there, as hex for protobuf, and a delivery
// Secret's body is its plaintext: it must reach no log at any verbosity.
func withoutBodies(ctx context.Context) context.Context {
	l := logf.FromContext(ctx)
	return logr.NewContext(ctx, logr.New(cappedSink{LogSink: l.GetSink(), max: 7}).WithCallDepth(0))
}

// cappedSink is a LogSink enabled at no level above max.
type cappedSink struct {
	logr.LogSink
	max int
}

// Init does nothing: the sink it wraps was initialised already.
func (c cappedSink) Init(logr.RuntimeInfo) {}

func (c cappedSink) Enabled(level int) bool { return level <= c.max && c.LogSink.Enabled(level) }

func (c cappedSink) WithValues(kv ...any) logr.LogSink {
	return cappedSink{LogSink: c.LogSink.WithValues(kv...), max: c.max}
}

func (c cappedSink) WithName(name string) logr.LogSink {
	return cappedSink{LogSink: c.LogSink.WithName(name), max: c.max}
}
