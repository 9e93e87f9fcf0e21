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

package controllers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/controllers"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

// issueOne creates a group, an application and a key in ns and waits for
// the key to be Active.
func issueOne(t *testing.T, ns string, keyOpts ...testgen.APIKeyOption) *keywardv1alpha1.APIKey {
	t.Helper()
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things", testgen.WithExternalID("70B3D57ED0001234")))
	create(t, testgen.APIKey(ns, "acme-key", "acme", keyOpts...))
	return waitPhase(t, ns, "acme-key", keywardv1alpha1.APIKeyActive)
}

func TestIssuedKeyIsHashedAndDeliveredOnce(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns})
	key := issueOne(t, ns, testgen.WithScopes("read", "write"), testgen.WithSourceRanges("203.0.113.0/24"))

	if c := meta.FindStatusCondition(key.Status.Conditions, keywardv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("Ready condition: %+v", c)
	}
	delivery := deliverySecret(t, key)
	if delivery == nil {
		t.Fatal("no delivery Secret")
	}
	plaintext := string(delivery.Data[record.DeliveryAPIKey])
	parsed, err := keys.Parse(plaintext)
	if err != nil {
		t.Fatalf("the delivered key does not parse: %v", err)
	}
	if parsed.Prefix() != "kt" || parsed.ID() != key.Status.KeyID || string(delivery.Data[record.DeliveryKeyID]) != key.Status.KeyID {
		t.Errorf("prefix %q, id %q, delivered id %q, status keyID %q", parsed.Prefix(), parsed.ID(), delivery.Data[record.DeliveryKeyID], key.Status.KeyID)
	}
	if !metav1.IsControlledBy(delivery, key) {
		t.Errorf("the delivery Secret is not owned by the APIKey: %+v", delivery.OwnerReferences)
	}

	hashed := hashedSecret(t, ops, key)
	if hashed == nil {
		t.Fatal("no hashed Secret")
	}
	sum := sha256.Sum256([]byte(plaintext))
	if got := string(hashed.Data[record.DataDigest]); got != hex.EncodeToString(sum[:]) {
		t.Errorf("stored digest %s, SHA-256 of the delivered key %x", got, sum)
	}
	rec, err := record.Decode(hashed.Data)
	if err != nil {
		t.Fatal(err)
	}
	want := record.Record{
		Digest: sum, KeyID: key.Status.KeyID, Namespace: ns, KeyGroup: "things", Application: "acme", APIKey: "acme-key",
		ExternalID: "70B3D57ED0001234", Scopes: []string{"read", "write"}, State: record.StateActive,
	}
	if got := fmt.Sprintf("%v %v %v %v %v %v %v %v", rec.KeyID, rec.Namespace, rec.KeyGroup, rec.Application, rec.APIKey, rec.ExternalID, rec.Scopes, rec.State); got != fmt.Sprintf("%v %v %v %v %v %v %v %v", want.KeyID, want.Namespace, want.KeyGroup, want.Application, want.APIKey, want.ExternalID, want.Scopes, want.State) {
		t.Errorf("record: got %s", got)
	}
	if len(rec.SourceRanges) != 1 || rec.SourceRanges[0].String() != "203.0.113.0/24" {
		t.Errorf("record source ranges: %v", rec.SourceRanges)
	}
	if hashed.Labels[record.LabelHashedKey] != "true" {
		t.Errorf("hashed Secret labels: %v", hashed.Labels)
	}

	t.Run("the plaintext is nowhere else", func(t *testing.T) {
		assertPlaintextOnlyIn(t, plaintext, delivery)
	})

	t.Run("events", func(t *testing.T) {
		testenv.Eventually(t, 10*time.Second, func() error {
			return hasEvent(ns, "acme-key", "Issued", "Key "+key.Status.KeyID+" issued to Secret acme-key-key")
		})
	})
}

// assertPlaintextOnlyIn scans every Secret, ConfigMap, event and keyward
// object in the cluster for the plaintext, in clear and base64, and fails
// if it is anywhere but the one allowed Secret.
func assertPlaintextOnlyIn(t *testing.T, plaintext string, allowed *corev1.Secret) {
	t.Helper()
	ctx := context.Background()
	needles := [][]byte{[]byte(plaintext), []byte(base64.StdEncoding.EncodeToString([]byte(plaintext)))}
	// The random part alone, so a key split or re-prefixed is caught too.
	needles = append(needles, []byte(plaintext[strings.IndexByte(plaintext, '_')+1:][:20]))
	lists := []client.ObjectList{
		&corev1.SecretList{}, &corev1.ConfigMapList{}, &corev1.EventList{}, &eventsv1.EventList{},
		&keywardv1alpha1.APIKeyList{}, &keywardv1alpha1.ApplicationList{}, &keywardv1alpha1.KeyGroupList{},
	}
	scanned := 0
	for _, l := range lists {
		if err := env.Client.List(ctx, l); err != nil {
			t.Fatal(err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range items {
			o := item.(client.Object)
			if s, ok := o.(*corev1.Secret); ok && s.UID == allowed.UID {
				continue
			}
			scanned++
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range needles {
				if bytes.Contains(b, n) {
					t.Errorf("the plaintext key appears in %T %s/%s", o, o.GetNamespace(), o.GetName())
				}
			}
		}
	}
	if scanned < 5 {
		t.Fatalf("scanned only %d objects; the scan is not looking", scanned)
	}
}

func hasEvent(ns, object, reason, note string) error {
	var list eventsv1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		return err
	}
	var seen []string
	for _, e := range list.Items {
		if e.Regarding.Name == object {
			seen = append(seen, e.Reason+": "+e.Note)
			if e.Reason == reason && strings.Contains(e.Note, note) {
				return nil
			}
		}
	}
	return fmt.Errorf("no %s event %q for %s; seen %q", reason, note, object, seen)
}

func TestLostDeliverySecretAndStatusNeverReMint(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	m := startManager(t, ops, []string{ns})
	key := issueOne(t, ns)
	digest := string(hashedSecret(t, ops, key).Data[record.DataDigest])
	keyID := key.Status.KeyID

	m.stop()
	ctx := context.Background()
	if err := env.Client.Delete(ctx, deliverySecret(t, key)); err != nil {
		t.Fatal(err)
	}
	key.Status = keywardv1alpha1.APIKeyStatus{}
	if err := env.Client.Status().Update(ctx, key); err != nil {
		t.Fatal(err)
	}

	m = startManager(t, ops, []string{ns})
	key = waitPhase(t, ns, "acme-key", keywardv1alpha1.APIKeyActive)
	if got := string(hashedSecret(t, ops, key).Data[record.DataDigest]); got != digest {
		t.Errorf("the digest changed after a restart: %s, was %s", got, digest)
	}
	if key.Status.KeyID != keyID {
		t.Errorf("keyID %s, was %s", key.Status.KeyID, keyID)
	}
	if s := deliverySecret(t, key); s != nil {
		t.Errorf("a delivery Secret was written again: a key was re-minted")
	}
	for _, w := range m.writes.Log() {
		if strings.Contains(w, "create *v1.Secret") {
			t.Errorf("the restarted manager created a Secret: %s", w)
		}
	}
}

// TestDamagedRecordIsNotReady: a hashed Secret that no longer decodes (an
// administrator's hand edit, a bad restore) makes the verifiers refuse the
// key, so its Ready condition says so rather than "the key works"; once
// the record is restored, the key is Ready again.
func TestDamagedRecordIsNotReady(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns})
	key := issueOne(t, ns)
	h := hashedSecret(t, ops, key)
	state := string(h.Data[record.DataState])
	setState := func(v string) {
		t.Helper()
		patch := client.MergeFrom(h.DeepCopy())
		h.Data[record.DataState] = []byte(v)
		if err := env.Client.Patch(context.Background(), h, patch); err != nil {
			t.Fatal(err)
		}
	}
	readyReason := func(want string) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, func() error {
			c := meta.FindStatusCondition(getKey(t, ns, key.Name).Status.Conditions, keywardv1alpha1.ConditionReady)
			if c == nil || c.Reason != want {
				return fmt.Errorf("Ready condition %+v, want reason %s", c, want)
			}
			return nil
		})
	}
	setState("garbage")
	readyReason(controllers.ReasonRecordDamaged)
	setState(state)
	readyReason(controllers.ReasonActive)
}

// TestDeletedHashedSecretIsNeverRevived: the hashed Secret is the only
// record that makes a key valid. Deleted (an administrator's last resort
// when the manager is down), the key is lost for good: the plaintext still
// in the delivery Secret is never hashed again, and no other key is minted.
func TestDeletedHashedSecretIsNeverRevived(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns})
	key := issueOne(t, ns)
	plaintext := string(deliverySecret(t, key).Data[record.DeliveryAPIKey])
	if err := env.Client.Delete(context.Background(), hashedSecret(t, ops, key)); err != nil {
		t.Fatal(err)
	}
	k := waitPhase(t, ns, key.Name, keywardv1alpha1.APIKeyRejected)
	if c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady); c == nil || c.Reason != "KeyLost" {
		t.Errorf("Ready condition %+v, want reason KeyLost", c)
	}
	if h := hashedSecret(t, ops, k); h != nil {
		t.Errorf("a hashed Secret was written again (the delivered key revived %v)", string(h.Data[record.DataDigest]) == keys.DigestOf(plaintext).String())
	}
	if s := deliverySecret(t, k); s == nil || string(s.Data[record.DeliveryAPIKey]) != plaintext {
		t.Error("the delivery Secret was rewritten: a second key was minted")
	}
}

// TestNarrowedGroupRangesShowInReady: a KeyGroup whose allowedSourceRanges
// are narrowed after a key was admitted holds the key to both lists; the
// key's Ready message says from where it no longer works, instead of "the
// key works".
func TestNarrowedGroupRangesShowInReady(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns})
	create(t, testgen.KeyGroup(ns, "things", testgen.WithGroupSourceRanges("0.0.0.0/0")), testgen.Application(ns, "acme", "things"))
	waitAppPhase(t, ns, "acme", keywardv1alpha1.ApplicationActive)
	create(t, testgen.APIKey(ns, "k", "acme", testgen.WithSourceRanges("198.51.100.0/24", "203.0.113.0/24")))
	k := waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	if c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady); c == nil || c.Message != "the key works" {
		t.Fatalf("Ready %+v, want the key works", c)
	}
	update(t, testgen.KeyGroup(ns, "things"), func(g *keywardv1alpha1.KeyGroup) {
		g.Spec.AllowedSourceRanges = []keywardv1alpha1.CIDR{"203.0.113.0/24"}
	})
	testenv.Eventually(t, 20*time.Second, func() error {
		k := getKey(t, ns, "k")
		c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady)
		if k.Status.Phase != keywardv1alpha1.APIKeyActive || c == nil || !strings.Contains(c.Message, "198.51.100.0/24 is not within them") {
			return fmt.Errorf("phase %s, Ready %+v: want Active, naming the range outside the group's", k.Status.Phase, c)
		}
		return nil
	})
}

// TestLimitHoldsUnderConcurrentCreation creates 50 keys at once for an
// application allowed 10, with no webhook to turn any away: the controller
// alone must admit exactly 10, every time.
func TestLimitHoldsUnderConcurrentCreation(t *testing.T) {
	env.Need(t)
	t.Parallel()
	for run := 1; run <= 3; run++ {
		t.Run(fmt.Sprintf("run %d", run), func(t *testing.T) {
			ops, ns := env.Namespace(t), env.Namespace(t)
			startManager(t, ops, []string{ns})
			create(t, testgen.KeyGroup(ns, "things", testgen.WithLimits(10, 10)), testgen.Application(ns, "acme", "things"))
			waitAppPhase(t, ns, "acme", keywardv1alpha1.ApplicationActive)

			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- env.Client.Create(context.Background(), testgen.APIKey(ns, fmt.Sprintf("key-%02d", i), "acme"))
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}

			var list keywardv1alpha1.APIKeyList
			testenv.Eventually(t, 60*time.Second, func() error {
				if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
					return err
				}
				counts := map[keywardv1alpha1.APIKeyPhase]int{}
				for _, k := range list.Items {
					counts[k.Status.Phase]++
				}
				if counts[keywardv1alpha1.APIKeyActive]+counts[keywardv1alpha1.APIKeyRejected] != 50 {
					return fmt.Errorf("not settled: %v", counts)
				}
				if counts[keywardv1alpha1.APIKeyActive] != 10 || counts[keywardv1alpha1.APIKeyRejected] != 40 {
					t.Fatalf("want 10 Active and 40 Rejected, got %v", counts)
				}
				return nil
			})
			var hashed corev1.SecretList
			if err := env.Client.List(context.Background(), &hashed, client.InNamespace(ops), client.MatchingLabels{record.LabelHashedKey: "true"}); err != nil {
				t.Fatal(err)
			}
			if len(hashed.Items) != 10 {
				t.Errorf("%d hashed Secrets; want 10: rejected keys must never be published", len(hashed.Items))
			}
			for _, k := range list.Items {
				if k.Status.Phase != keywardv1alpha1.APIKeyRejected {
					continue
				}
				c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady)
				if c == nil || c.Reason != "LimitExceeded" || !strings.Contains(c.Message, "10/10") || !strings.Contains(c.Message, "revoke or delete one of its keys") {
					t.Errorf("%s: Ready %+v; want LimitExceeded naming 10/10 and what to do", k.Name, c)
				}
				if deliverySecret(t, &k) != nil || k.Status.KeyID != "" {
					t.Errorf("%s was Rejected but minted", k.Name)
				}
			}
			app := waitAppPhase(t, ns, "acme", keywardv1alpha1.ApplicationActive)
			testenv.Eventually(t, 10*time.Second, func() error {
				if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(app), app); err != nil {
					return err
				}
				if app.Status.ActiveKeys != 10 {
					return fmt.Errorf("application activeKeys %d, want 10", app.Status.ActiveKeys)
				}
				return nil
			})
		})
	}
}

func expectState(t *testing.T, ops string, k *keywardv1alpha1.APIKey, want record.State) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		s := hashedSecret(t, ops, k)
		if s == nil {
			return fmt.Errorf("no hashed Secret")
		}
		if got := record.State(s.Data[record.DataState]); got != want || s.Labels[record.LabelState] != string(want) {
			return fmt.Errorf("hashed Secret state %q (label %q), want %q", got, s.Labels[record.LabelState], want)
		}
		return nil
	})
}

func TestKeyLifecycle(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	start := time.Now().Truncate(time.Second)
	fake := clocktesting.NewFakeClock(start)
	m := startManager(t, ops, []string{ns}, withClock(fake))
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"), testgen.Application(ns, "other", "things"))

	t.Run("disable and enable", func(t *testing.T) {
		create(t, testgen.APIKey(ns, "toggle", "acme"))
		k := waitPhase(t, ns, "toggle", keywardv1alpha1.APIKeyActive)
		update(t, k, func(k *keywardv1alpha1.APIKey) { k.Spec.Disabled = true })
		waitPhase(t, ns, "toggle", keywardv1alpha1.APIKeyDisabled)
		expectState(t, ops, k, record.StateDisabled)
		update(t, k, func(k *keywardv1alpha1.APIKey) { k.Spec.Disabled = false })
		waitPhase(t, ns, "toggle", keywardv1alpha1.APIKeyActive)
		expectState(t, ops, k, record.StateActive)
		testenv.Eventually(t, 10*time.Second, func() error { return hasEvent(ns, "toggle", "Enabled", "switched on") })
		testenv.Eventually(t, 10*time.Second, func() error { return hasEvent(ns, "toggle", "Disabled", "switched off") })
	})

	t.Run("revoke", func(t *testing.T) {
		create(t, testgen.APIKey(ns, "revoke-me", "acme"))
		k := waitPhase(t, ns, "revoke-me", keywardv1alpha1.APIKeyActive)
		update(t, k, func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true })
		waitPhase(t, ns, "revoke-me", keywardv1alpha1.APIKeyRevoked)
		expectState(t, ops, k, record.StateRevoked)
		testenv.Eventually(t, 10*time.Second, func() error { return hasEvent(ns, "revoke-me", "Revoked", "spec.revoked is true") })
	})

	t.Run("expiry follows the injected clock", func(t *testing.T) {
		create(t, testgen.APIKey(ns, "expiring", "acme", testgen.WithExpiry(start.Add(time.Hour))))
		k := waitPhase(t, ns, "expiring", keywardv1alpha1.APIKeyActive)
		if k.Status.ExpiresAt == nil || !k.Status.ExpiresAt.Time.Equal(start.Add(time.Hour)) {
			t.Errorf("status.expiresAt %v", k.Status.ExpiresAt)
		}
		fake.Step(2 * time.Hour)
		// The real requeue is an hour away; a touch makes the controller
		// look now, and it must judge by its clock, not the wall's.
		update(t, k, func(k *keywardv1alpha1.APIKey) { k.Spec.Description = "touched" })
		waitPhase(t, ns, "expiring", keywardv1alpha1.APIKeyExpired)
		expectState(t, ops, k, record.StateExpired)
		testenv.Eventually(t, 10*time.Second, func() error { return hasEvent(ns, "expiring", "Expired", "expired at") })
	})

	t.Run("application revoked", func(t *testing.T) {
		create(t, testgen.APIKey(ns, "other-key", "other"))
		waitPhase(t, ns, "other-key", keywardv1alpha1.APIKeyActive)
		update(t, &keywardv1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"}}, func(a *keywardv1alpha1.Application) { a.Spec.Revoked = true })
		waitAppPhase(t, ns, "other", keywardv1alpha1.ApplicationRevoked)
		k := waitPhase(t, ns, "other-key", keywardv1alpha1.APIKeyRevoked)
		expectState(t, ops, k, record.StateRevoked)
		if c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady); c.Reason != "ApplicationRevoked" {
			t.Errorf("reason %s", c.Reason)
		}
	})

	t.Run("delete", func(t *testing.T) {
		create(t, testgen.APIKey(ns, "delete-me", "acme"))
		k := waitPhase(t, ns, "delete-me", keywardv1alpha1.APIKeyActive)
		if !controllerutilContainsFinalizer(k) {
			t.Fatalf("finalizers %v", k.Finalizers)
		}
		delivery := deliverySecret(t, k)
		if err := env.Client.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, func() error {
			if hashedSecret(t, ops, k) != nil {
				return fmt.Errorf("the hashed Secret is still there")
			}
			if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(k), &keywardv1alpha1.APIKey{}); err == nil {
				return fmt.Errorf("the APIKey is still there")
			}
			return nil
		})
		// The garbage collector (kube-controller-manager, as in a cluster)
		// deletes the delivery Secret through its owner reference.
		ref := metav1.GetControllerOf(delivery)
		if ref == nil || ref.UID != k.UID || ref.Kind != "APIKey" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("delivery Secret owner reference %+v", ref)
		}
		testenv.Eventually(t, 30*time.Second, func() error {
			if deliverySecret(t, k) != nil {
				return fmt.Errorf("the deleted APIKey's delivery Secret %s is still there", k.DeliverySecretName())
			}
			return nil
		})
	})

	t.Run("delete, held by another finalizer", func(t *testing.T) {
		const hold = "example.com/hold"
		create(t, testgen.APIKey(ns, "held", "acme"))
		k := waitPhase(t, ns, "held", keywardv1alpha1.APIKeyActive)
		update(t, k, func(k *keywardv1alpha1.APIKey) { k.Finalizers = append(k.Finalizers, hold) })
		if err := env.Client.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		// The key stops working, and Ready says so: kubectl shows no
		// Terminating for a custom resource, and the phase stays.
		testenv.Eventually(t, 10*time.Second, func() error {
			if hashedSecret(t, ops, k) != nil {
				return fmt.Errorf("the hashed Secret is still there")
			}
			got := getKey(t, ns, "held")
			c := meta.FindStatusCondition(got.Status.Conditions, keywardv1alpha1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "Deleting" || !strings.Contains(c.Message, hold) {
				return fmt.Errorf("Ready %+v, want False, Deleting, naming %s", c, hold)
			}
			if controllerutilContainsFinalizer(got) {
				return fmt.Errorf("keyward's finalizer is still there: %v", got.Finalizers)
			}
			return nil
		})
		update(t, getKey(t, ns, "held"), func(k *keywardv1alpha1.APIKey) { k.Finalizers = nil })
	})

	t.Run("key group deleted", func(t *testing.T) {
		create(t, testgen.APIKey(ns, "orphan", "acme"))
		waitPhase(t, ns, "orphan", keywardv1alpha1.APIKeyActive)
		if err := env.Client.Delete(context.Background(), testgen.KeyGroup(ns, "things")); err != nil {
			t.Fatal(err)
		}
		k := waitPhase(t, ns, "orphan", keywardv1alpha1.APIKeyRejected)
		expectState(t, ops, k, record.StateRejected)
		if c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady); c.Reason != "KeyGroupNotFound" {
			t.Errorf("reason %s", c.Reason)
		}
		// Terminal: the group coming back does not bring the key back, once
		// the controller has reconciled its keys for it.
		before := m.reconciles(t, "apikey")
		create(t, testgen.KeyGroup(ns, "things"))
		m.idle(t, "apikey", before)
		if k := getKey(t, ns, "orphan"); k.Status.Phase != keywardv1alpha1.APIKeyRejected {
			t.Errorf("phase %s after the group came back", k.Status.Phase)
		}
	})
}

func controllerutilContainsFinalizer(k *keywardv1alpha1.APIKey) bool {
	for _, f := range k.Finalizers {
		if f == keywardv1alpha1.Finalizer {
			return true
		}
	}
	return false
}

func TestExpiryRequeuesOnTime(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns})
	// The API stores times to the second. The key must be issued, and seen
	// Active, before it expires: 7 to 8 s, for a loaded machine.
	expires := time.Now().Add(8 * time.Second).Truncate(time.Second)
	k := issueOne(t, ns, testgen.WithExpiry(expires))
	k = waitPhase(t, ns, k.Name, keywardv1alpha1.APIKeyExpired)
	if time.Now().Before(expires) {
		t.Errorf("expired before expiresAt")
	}
	expectState(t, ops, k, record.StateExpired)
}

func TestKeyWaitsForItsApplicationAndGroup(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns})
	// GitOps may apply the key first.
	create(t, testgen.APIKey(ns, "early", "acme"))
	k := waitPhase(t, ns, "early", keywardv1alpha1.APIKeyPending)
	if c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady); c.Reason != "ApplicationNotFound" {
		t.Errorf("reason %s", c.Reason)
	}
	create(t, testgen.Application(ns, "acme", "things"))
	testenv.Eventually(t, 10*time.Second, func() error {
		c := meta.FindStatusCondition(getKey(t, ns, "early").Status.Conditions, keywardv1alpha1.ConditionReady)
		if c == nil || c.Reason != "KeyGroupNotFound" {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	create(t, testgen.KeyGroup(ns, "things"))
	waitPhase(t, ns, "early", keywardv1alpha1.APIKeyActive)
}

func TestScopeRemovedRejectsKey(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns})
	k := issueOne(t, ns, testgen.WithScopes("write"))
	update(t, &keywardv1alpha1.KeyGroup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "things"}}, func(g *keywardv1alpha1.KeyGroup) {
		g.Spec.Scopes = g.Spec.Scopes[:1]
	})
	k = waitPhase(t, ns, k.Name, keywardv1alpha1.APIKeyRejected)
	expectState(t, ops, k, record.StateRejected)
	if c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady); c.Reason != "ScopeNotFound" || !strings.Contains(c.Message, "no scope write") {
		t.Errorf("condition %+v", c)
	}
}

func TestApplicationLimit(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns})
	create(t, testgen.KeyGroup(ns, "things", testgen.WithLimits(2, 10)))
	for i := range 4 {
		create(t, testgen.Application(ns, fmt.Sprintf("app-%d", i), "things"))
	}
	counts := map[keywardv1alpha1.ApplicationPhase]int{}
	testenv.Eventually(t, 20*time.Second, func() error {
		var list keywardv1alpha1.ApplicationList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		clear(counts)
		for _, a := range list.Items {
			counts[a.Status.Phase]++
		}
		if counts[keywardv1alpha1.ApplicationActive] != 2 || counts[keywardv1alpha1.ApplicationRejected] != 2 {
			return fmt.Errorf("phases %v, want 2 Active and 2 Rejected", counts)
		}
		return nil
	})
	a := waitAppPhase(t, ns, "app-3", keywardv1alpha1.ApplicationRejected)
	if c := meta.FindStatusCondition(a.Status.Conditions, keywardv1alpha1.ConditionReady); c == nil || !strings.Contains(c.Message, "2/2 active applications") {
		t.Errorf("condition %+v", c)
	}
	// A key of a rejected application never works.
	create(t, testgen.APIKey(ns, "k", "app-3"))
	waitPhase(t, ns, "k", keywardv1alpha1.APIKeyRejected)

	g := &keywardv1alpha1.KeyGroup{}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "things"}, g); err != nil {
			return err
		}
		if g.Status.Applications != 2 || g.Status.VerifyURL != "http://keyward-verifier."+ops+".svc/v1/verify/"+ns+"/things" {
			return fmt.Errorf("status %+v", g.Status)
		}
		return nil
	})
}

// TestReplacedKeyGroupAdmitsApplicationsAgain: a KeyGroup deleted and
// created again under the same name, with fewer slots, while no manager
// watched (so the controller never sees it missing), is a new group. The
// applications Active in the old one are admitted to it again, oldest
// first, against its maxApplications, instead of staying Active beyond
// its limit; a rejected one's new key is never issued.
func TestReplacedKeyGroupAdmitsApplicationsAgain(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ctx := context.Background()
	ops, ns := env.Namespace(t), env.Namespace(t)
	m := startManager(t, ops, []string{ns})
	create(t, testgen.KeyGroup(ns, "things", testgen.WithLimits(3, 10)))
	for i := range 3 {
		create(t, testgen.Application(ns, fmt.Sprintf("app-%d", i), "things"))
	}
	oldGroup := &keywardv1alpha1.KeyGroup{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "things"}, oldGroup); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if a := waitAppPhase(t, ns, fmt.Sprintf("app-%d", i), keywardv1alpha1.ApplicationActive); a.Status.KeyGroupUID != oldGroup.UID {
			t.Fatalf("Application %s: status.keyGroupUID %q, want the group's %q", a.Name, a.Status.KeyGroupUID, oldGroup.UID)
		}
	}

	m.stop()
	if err := env.Client.Delete(ctx, oldGroup); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(oldGroup), &keywardv1alpha1.KeyGroup{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("KeyGroup still there (%v)", err)
		}
		return nil
	})
	newGroup := testgen.KeyGroup(ns, "things", testgen.WithLimits(1, 10))
	create(t, newGroup)
	startManager(t, ops, []string{ns})

	testenv.Eventually(t, 20*time.Second, func() error {
		a := &keywardv1alpha1.Application{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-0"}, a); err != nil {
			return err
		}
		if a.Status.Phase != keywardv1alpha1.ApplicationActive || a.Status.KeyGroupUID != newGroup.UID {
			return fmt.Errorf("app-0: phase %q in group %q, want Active in the new group %q", a.Status.Phase, a.Status.KeyGroupUID, newGroup.UID)
		}
		return nil
	})
	for _, name := range []string{"app-1", "app-2"} {
		a := waitAppPhase(t, ns, name, keywardv1alpha1.ApplicationRejected)
		if c := meta.FindStatusCondition(a.Status.Conditions, keywardv1alpha1.ConditionReady); c == nil || !strings.Contains(c.Message, "1/1 active applications") {
			t.Errorf("%s: condition %+v, want the new group's limit 1/1", name, c)
		}
	}
	create(t, testgen.APIKey(ns, "k0", "app-0"), testgen.APIKey(ns, "k1", "app-1"))
	waitPhase(t, ns, "k0", keywardv1alpha1.APIKeyActive)
	if k := waitPhase(t, ns, "k1", keywardv1alpha1.APIKeyRejected); k.Status.KeyID != "" {
		t.Errorf("k1 of a rejected application was issued (key id %q)", k.Status.KeyID)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		g := &keywardv1alpha1.KeyGroup{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(newGroup), g); err != nil {
			return err
		}
		if g.Status.Applications != 1 {
			return fmt.Errorf("KeyGroup status.applications %d, want 1", g.Status.Applications)
		}
		return nil
	})
}

// TestResyncIsQuiet restarts the manager over 100 Active keys: every key is
// reconciled again, and nothing is written.
func TestResyncIsQuiet(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	m := startManager(t, ops, []string{ns})
	create(t, testgen.KeyGroup(ns, "things", testgen.WithLimits(10, 1000)), testgen.Application(ns, "acme", "things"))
	waitAppPhase(t, ns, "acme", keywardv1alpha1.ApplicationActive)
	before := m.writes.Load()
	for i := range 100 {
		create(t, testgen.APIKey(ns, fmt.Sprintf("key-%03d", i), "acme"))
	}
	for i := range 100 {
		waitPhase(t, ns, fmt.Sprintf("key-%03d", i), keywardv1alpha1.APIKeyActive)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		a := &keywardv1alpha1.Application{}
		_ = env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "acme"}, a)
		if a.Status.ActiveKeys != 100 {
			return fmt.Errorf("activeKeys %d", a.Status.ActiveKeys)
		}
		return nil
	})
	// The group's count comes last, a moment after the application's.
	testenv.Eventually(t, 20*time.Second, func() error {
		g := &keywardv1alpha1.KeyGroup{}
		_ = env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "things"}, g)
		if g.Status.ActiveKeys != 100 {
			return fmt.Errorf("group activeKeys %d", g.Status.ActiveKeys)
		}
		return nil
	})
	m.allIdle(t, counts{})
	issued := m.writes.Load() - before
	t.Logf("issuing 100 keys took %d API writes (%.2f per key, counts included)", issued, float64(issued)/100)
	m.stop()

	m = startManager(t, ops, []string{ns})
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := m.reconciles(t, "apikey"); n < 100 {
			return fmt.Errorf("%v APIKey reconciles since the restart, want at least 100", n)
		}
		return nil
	})
	// Every controller has reconciled what it found and is idle: whatever
	// the resync would write, it has written.
	m.allIdle(t, counts{})
	if n := m.writes.Load(); n != 0 {
		t.Errorf("a resync of 100 idle keys made %d API writes, want 0: %q", n, m.writes.Log())
	}
}

// TestIssuanceWrites pins what one key's issuance costs: the finalizer, the
// delivery Secret, the hashed Secret and one status write for the APIKey,
// plus the Application's and KeyGroup's counts.
func TestIssuanceWrites(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	m := startManager(t, ops, []string{ns})
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
	waitAppPhase(t, ns, "acme", keywardv1alpha1.ApplicationActive)
	testenv.Eventually(t, 10*time.Second, func() error {
		g := &keywardv1alpha1.KeyGroup{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "things"}, g); err != nil {
			return err
		}
		if g.Status.Applications != 1 {
			return fmt.Errorf("group applications %d", g.Status.Applications)
		}
		return nil
	})
	// No key yet: the APIKey controller has had nothing to do.
	m.idle(t, "application", 0)
	m.idle(t, "keygroup", 0)
	m.quiet(t, "apikey")
	before := len(m.writes.Log())
	start := m.counts(t)

	create(t, testgen.APIKey(ns, "one", "acme"))
	waitPhase(t, ns, "one", keywardv1alpha1.APIKeyActive)
	testenv.Eventually(t, 10*time.Second, func() error {
		g := &keywardv1alpha1.KeyGroup{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "things"}, g); err != nil {
			return err
		}
		if g.Status.ActiveKeys != 1 {
			return fmt.Errorf("group activeKeys %d", g.Status.ActiveKeys)
		}
		return nil
	})
	m.allIdle(t, start)
	writes := m.writes.Log()[before:]
	one := &keywardv1alpha1.APIKey{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "one"}, one); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"patch *v1alpha1.APIKey " + ns + "/one":                               1, // finalizer
		"create *v1.Secret " + ns + "/one-key":                                1, // delivery
		"create *v1.Secret " + ops + "/" + record.SecretName(string(one.UID)): 1, // hashed: a create, no server-side apply
		"patch/status *v1alpha1.APIKey " + ns + "/one":                        1,
		"patch/status *v1alpha1.Application " + ns + "/acme":                  1,
		"patch/status *v1alpha1.KeyGroup " + ns + "/things":                   1,
		// The creator's grant, asked again just before minting: a
		// review, nothing is stored.
		"create *v1.SubjectAccessReview /": 1,
	}
	got := map[string]int{}
	for _, w := range writes {
		got[w]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("writes for one key:\n got %v\nwant %v", got, want)
	}
	t.Logf("one key's issuance: %d API requests that write (one a SubjectAccessReview), %d of them on the APIKey and its Secrets", len(writes), 4)
}

// TestForgedStatusCannotSwitchAKeyOff: whoever can write APIKey status (the
// verifier's ServiceAccount can, for lastUsedTime) cannot make a working key
// terminal; the hashed Secret, which only keyward writes, decides.
func TestForgedStatusCannotSwitchAKeyOff(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns})
	k := issueOne(t, ns)
	k.Status.Phase = keywardv1alpha1.APIKeyRevoked
	if err := env.Client.Status().Update(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	// Any reconcile (here: an edit of the description) puts it right.
	update(t, k, func(k *keywardv1alpha1.APIKey) { k.Spec.Description = "touched" })
	waitPhase(t, ns, k.Name, keywardv1alpha1.APIKeyActive)
	expectState(t, ops, k, record.StateActive)
}

// TestKeyDeletedWithoutItsFinalizerStopsWorking: whoever strips the
// finalizer of an APIKey and deletes it leaves no working key behind: the
// controller deletes hashed Secrets that belong to no existing APIKey,
// also when an APIKey of the same name was created again meanwhile.
func TestKeyDeletedWithoutItsFinalizerStopsWorking(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ctx := context.Background()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns})
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
	waitAppPhase(t, ns, "acme", keywardv1alpha1.ApplicationActive)
	strip := func(k *keywardv1alpha1.APIKey) {
		t.Helper()
		if err := env.Client.Patch(ctx, k, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(k *keywardv1alpha1.APIKey) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			if h := hashedSecret(t, ops, k); h != nil {
				return fmt.Errorf("the hashed Secret of deleted APIKey %s (%s) is still there", k.Name, k.UID)
			}
			return nil
		})
	}

	create(t, testgen.APIKey(ns, "stripped", "acme"))
	k := waitPhase(t, ns, "stripped", keywardv1alpha1.APIKeyActive)
	strip(k)
	gone(k)

	// Deleted without its finalizer and created again at once: the old
	// key's record goes, the new key's stays.
	create(t, testgen.APIKey(ns, "again", "acme"))
	old := waitPhase(t, ns, "again", keywardv1alpha1.APIKeyActive)
	strip(old)
	// (Its delivery Secret is collected with it, or a moment later.)
	// (The controller may have put the finalizer back before the delete:
	// then the old APIKey goes through it first.)
	testenv.Eventually(t, 30*time.Second, func() error {
		return env.Client.Create(ctx, testgen.APIKey(ns, "again", "acme", testgen.WithSecretName("again-key-2")))
	})
	fresh := waitPhase(t, ns, "again", keywardv1alpha1.APIKeyActive)
	if fresh.UID == old.UID {
		t.Fatal("the APIKey was not created again")
	}
	gone(old)
	if hashedSecret(t, ops, fresh) == nil {
		t.Error("the new APIKey's hashed Secret was deleted with the old one's")
	}
}

// TestNamespaceFinishesDeleting deletes a namespace holding a working key:
// kube-controller-manager's namespace controller deletes what is in it, the
// manager lets the key go through its finalizer (deleting its hashed
// Secret, so the key stops working), and the namespace is gone.
func TestNamespaceFinishesDeleting(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, []string{ns})
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"), testgen.APIKey(ns, "k", "acme"))
	k := waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	if hashedSecret(t, ops, k) == nil {
		t.Fatal("no hashed Secret")
	}
	if err := env.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		err := env.Client.Get(context.Background(), client.ObjectKey{Name: ns}, &corev1.Namespace{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s still there (%v)", ns, err)
		}
		return nil
	})
	if hashedSecret(t, ops, k) != nil {
		t.Error("the key's hashed Secret outlived its namespace: the key still works")
	}
}

// TestDeliverySecretConflictResumes: a key whose delivery Secret is taken
// by someone else's Secret waits, saying to delete it; once it is deleted,
// the key is issued without anything else changing (delivery Secrets are
// not watched, so the key looks again within half a minute).
func TestDeliverySecretConflictResumes(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
	k := testgen.APIKey(ns, "k", "acme")
	blocker := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: k.DeliverySecretName()}, StringData: map[string]string{"mine": "yes"}}
	create(t, blocker)
	startManager(t, ops, []string{ns})
	create(t, k)
	testenv.Eventually(t, 20*time.Second, func() error {
		c := meta.FindStatusCondition(getKey(t, ns, "k").Status.Conditions, keywardv1alpha1.ConditionReady)
		if c == nil || c.Reason != controllers.ReasonDeliverySecretConflict {
			return fmt.Errorf("condition %+v, want %s", c, controllers.ReasonDeliverySecretConflict)
		}
		return nil
	})
	if err := env.Client.Delete(context.Background(), blocker); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 45*time.Second, func() error {
		if k := getKey(t, ns, "k"); k.Status.Phase != keywardv1alpha1.APIKeyActive {
			return fmt.Errorf("phase %q after the Secret in the way was deleted, want Active", k.Status.Phase)
		}
		return nil
	})
}
