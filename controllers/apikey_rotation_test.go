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
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/controllers"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

// rotatingKey returns APIKey k of application acme with a rotation
// schedule.
func rotatingKey(ns string, every, overlap time.Duration) *keywardv1alpha1.APIKey {
	k := testgen.APIKey(ns, "k", "acme")
	k.Spec.Rotation = &keywardv1alpha1.APIKeyRotation{Every: metav1.Duration{Duration: every}, Overlap: &metav1.Duration{Duration: overlap}}
	return k
}

// delivered is what a key's delivery Secret holds: api-key and, while a
// rotation is staged, api-key-next.
func delivered(t *testing.T, k *keywardv1alpha1.APIKey) (current, next string) {
	t.Helper()
	s := deliverySecret(t, k)
	if s == nil {
		return "", ""
	}
	return string(s.Data[record.DeliveryAPIKey]), string(s.Data[controllers.DeliveryNextKey])
}

// hashedRecord decodes the key's hashed Secret.
func hashedRecord(t *testing.T, ops string, k *keywardv1alpha1.APIKey) *record.Record {
	t.Helper()
	s := hashedSecret(t, ops, k)
	if s == nil {
		t.Fatalf("APIKey %s has no hashed Secret", k.Name)
	}
	r, err := record.Decode(s.Data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// requestRotation sets a new keyward.dev/rotate value.
func requestRotation(t *testing.T, k *keywardv1alpha1.APIKey, value string) {
	t.Helper()
	update(t, k, func(k *keywardv1alpha1.APIKey) {
		if k.Annotations == nil {
			k.Annotations = map[string]string{}
		}
		k.Annotations[keywardv1alpha1.AnnotationRotate] = value
	})
}

// waitRotated waits until the key's rotation is complete: api-key holds
// a key other than from, nothing is staged, the hashed record's current key
// is the delivered one and its previous key is from. It returns the new key.
func waitRotated(t *testing.T, ops string, k *keywardv1alpha1.APIKey, from string) string {
	t.Helper()
	var now string
	testenv.Eventually(t, 20*time.Second, func() error {
		cur, next := delivered(t, k)
		if cur == from || cur == "" || next != "" {
			return fmt.Errorf("delivery Secret: a new api-key %v, staged %v", cur != from && cur != "", next != "")
		}
		rec := hashedRecord(t, ops, k)
		if rec.Rotating || rec.Digest != keys.DigestOf(cur) || rec.Previous == nil || rec.Previous.Digest != keys.DigestOf(from) {
			return fmt.Errorf("hashed record: rotating %v, current is the delivered key %v, previous is the old key %v",
				rec.Rotating, rec.Digest == keys.DigestOf(cur), rec.Previous != nil && rec.Previous.Digest == keys.DigestOf(from))
		}
		now = cur
		return nil
	})
	return now
}

// crashAt is a point of a rotation after which the manager is killed: the
// write that ends the step goes through, and none after it.
type crashAt struct {
	name  string
	write func(verb string, obj any) bool
}

var rotationSteps = []crashAt{
	{"staged", func(verb string, obj any) bool {
		s, ok := obj.(*corev1.Secret)
		return ok && verb == "update" && s.Data[controllers.DeliveryNextKey] != nil
	}},
	{"committed", func(verb string, obj any) bool {
		s, ok := obj.(*corev1.Secret)
		return ok && verb == "patch" && s.Data[record.DataRotating] != nil
	}},
	{"promoted", func(verb string, obj any) bool {
		s, ok := obj.(*corev1.Secret)
		return ok && verb == "update" && s.Data[controllers.DeliveryNextKey] == nil && s.Data[record.DeliveryAPIKey] != nil
	}},
}

// crashingClient lets writes through until one matches at; every write
// after that one fails, as if the process had died, and crashed is closed.
func crashingClient(at crashAt, crashed chan struct{}) testenv.NewClientFunc {
	var armed, dead atomic.Bool
	var once sync.Once
	return testenv.InterceptingClient(func(verb string, obj any) error {
		if dead.Load() || armed.Load() {
			dead.Store(true)
			once.Do(func() { close(crashed) })
			return errors.New("the manager was killed")
		}
		if at.write(verb, obj) {
			armed.Store(true)
		}
		return nil
	})
}

// TestRotationSurvivesCrashes kills the manager right after each step of a
// rotation and starts another: the rotation completes with exactly one
// successor, and the delivery Secret's key is the one the hashed record
// makes current. Once committed, the successor is the one staged before the
// crash; killed before the commit, the staged successor never worked and a
// new one replaces it.
func TestRotationSurvivesCrashes(t *testing.T) {
	env.Need(t)
	for _, step := range rotationSteps {
		t.Run("killed once "+step.name, func(t *testing.T) {
			ops, ns := env.Namespace(t), env.Namespace(t)
			create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
			crashed := make(chan struct{})
			c := crashingClient(step, crashed)
			first := startManager(t, ops, []string{ns}, func(o *manager.Options) { o.NewClient, o.PromoteAfter = client.NewClientFunc(c), time.Millisecond })
			k := rotatingKey(ns, 24*time.Hour, time.Hour)
			create(t, k)
			waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
			original, _ := delivered(t, k)

			requestRotation(t, k, "crash-"+step.name)
			select {
			case <-crashed:
			case <-time.After(20 * time.Second):
				t.Fatalf("the rotation never reached %s", step.name)
			}
			first.stop()
			_, staged := delivered(t, k)
			if step.name == "promoted" {
				staged, _ = delivered(t, k)
			}
			if _, err := keys.Parse(staged); err != nil {
				t.Fatalf("after the crash the delivery Secret holds no successor: %v", err)
			}

			m := startManager(t, ops, []string{ns}, func(o *manager.Options) { o.PromoteAfter = time.Millisecond })
			now := waitRotated(t, ops, k, original)
			switch {
			case step.name == "staged" && now == staged:
				t.Errorf("the rotation promoted the successor staged before the crash, which was never committed: a plaintext found in the Secret became a key")
			case step.name != "staged" && now != staged:
				t.Errorf("the rotation completed with another successor than the one committed before the crash: a second key was minted")
			}
			m.allIdle(t, counts{})
			if got, _ := delivered(t, k); got != now {
				t.Errorf("the key changed again after the rotation completed")
			}
			k = getKey(t, ns, "k")
			if r := k.Status.Rotation; r == nil || r.PreviousKeyID != keyID(t, original) || k.Status.KeyID != keyID(t, now) {
				t.Errorf("status: keyID %s, rotation %+v", k.Status.KeyID, r)
			}
		})
	}
}

func keyID(t *testing.T, plaintext string) string {
	t.Helper()
	k, err := keys.Parse(plaintext)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

// TestPlantedSuccessorNeverBecomesAKey: whoever may write the delivery
// Secret (every tenant who may edit Secrets in the namespace) writes a key
// of their choosing, of the group's prefix and with a valid checksum, as
// api-key-next, then asks for a rotation. The rotation mints its own
// successor; the planted plaintext never verifies.
func TestPlantedSuccessorNeverBecomesAKey(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, k, original := issuedForRotation(t, func(ns string) *keywardv1alpha1.APIKey { return testgen.APIKey(ns, "k", "acme") })
	planted := plantedKey(t, original[:strings.IndexByte(original, '_')])

	update(t, deliverySecret(t, k), func(s *corev1.Secret) { s.Data[controllers.DeliveryNextKey] = []byte(planted) })
	requestRotation(t, k, "after-planting")
	now := waitRotated(t, ops, k, original)
	if now == planted {
		t.Fatal("the planted api-key-next was promoted: a plaintext the tenant chose is a key")
	}
	if rec := hashedRecord(t, ops, k); rec.Digest == keys.DigestOf(planted) || (rec.Previous != nil && rec.Previous.Digest == keys.DigestOf(planted)) {
		t.Error("the hashed record holds the planted key's digest")
	}
}

// TestRotationIntoAnEmptiedSecret: a delivery Secret emptied of all its
// data (by anyone who may write it) still receives the rotation's
// successor.
func TestRotationIntoAnEmptiedSecret(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, k, original := issuedForRotation(t, func(ns string) *keywardv1alpha1.APIKey { return testgen.APIKey(ns, "k", "acme") })
	update(t, deliverySecret(t, k), func(s *corev1.Secret) { s.Data = nil })
	requestRotation(t, k, "into-empty")
	waitRotated(t, ops, k, original)
}

// TestPlantedDeliverySecretNeverBecomesAKey: before a key is issued (its
// Application does not exist yet), a tenant creates its delivery Secret,
// made the APIKey's by an owner reference they may set, holding a key of
// their choosing. The key issued is a new one, written over the planted
// plaintext, which never verifies.
func TestPlantedDeliverySecretNeverBecomesAKey(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	group := testgen.KeyGroup(ns, "things")
	create(t, group)
	startManager(t, ops, []string{ns})
	k := testgen.APIKey(ns, "k", "acme")
	create(t, k)
	waitPhase(t, ns, "k", keywardv1alpha1.APIKeyPending)
	planted := plantedKey(t, group.Prefix())
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: k.DeliverySecretName(),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(k, keywardv1alpha1.GroupVersion.WithKind("APIKey"))}},
		Data: map[string][]byte{record.DeliveryAPIKey: []byte(planted), controllers.DeliveryNextKey: []byte(planted)},
	})
	create(t, testgen.Application(ns, "acme", "things"))
	k = waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	if got := hashedRecord(t, ops, k).Digest; got == keys.DigestOf(planted) {
		t.Fatal("the planted plaintext was hashed: a key the tenant chose works")
	}
	cur, next := delivered(t, k)
	if rec := hashedRecord(t, ops, k); cur == planted || rec.Digest != keys.DigestOf(cur) || next != "" {
		t.Errorf("delivery Secret: the planted key kept %v, holds the issued key %v, api-key-next left %v", cur == planted, rec.Digest == keys.DigestOf(cur), next != "")
	}
}

// issuedForRotation starts a manager that promotes a successor at once,
// over a new namespace with KeyGroup things and Application acme, creates
// the key newKey makes there and waits for it to be issued. It returns the
// operator's namespace, the key and its plaintext.
func issuedForRotation(t *testing.T, newKey func(ns string) *keywardv1alpha1.APIKey) (ops string, k *keywardv1alpha1.APIKey, plaintext string) {
	t.Helper()
	ops, ns := env.Namespace(t), env.Namespace(t)
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
	startManager(t, ops, []string{ns}, func(o *manager.Options) { o.PromoteAfter = time.Millisecond })
	k = newKey(ns)
	create(t, k)
	k = waitPhase(t, ns, k.Name, keywardv1alpha1.APIKeyActive)
	plaintext, _ = delivered(t, k)
	return ops, k, plaintext
}

// plantedKey is a key of the given prefix with a valid checksum: what a
// tenant can write.
func plantedKey(t *testing.T, prefix string) string {
	t.Helper()
	k, err := keys.Generate(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return k.Plaintext()
}

// TestSecondRotationWaitsForTheOverlap: a rotation asked for while the key
// a rotation replaced still works does not cut that key off before the end
// its rotation announced: it waits, and says so.
func TestSecondRotationWaitsForTheOverlap(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, k, original := issuedForRotation(t, func(ns string) *keywardv1alpha1.APIKey { return rotatingKey(ns, 24*time.Hour, time.Hour) })
	ns := k.Namespace
	requestRotation(t, k, "first")
	second := waitRotated(t, ops, k, original)
	first := hashedRecord(t, ops, k)

	requestRotation(t, k, "second")
	testenv.Eventually(t, 20*time.Second, func() error {
		c := meta.FindStatusCondition(getKey(t, ns, "k").Status.Conditions, keywardv1alpha1.ConditionRotated)
		if c == nil || c.Reason != controllers.ReasonRotationWaiting || !strings.Contains(c.Message, first.Previous.EndsAt.UTC().Format(time.RFC3339)) {
			return fmt.Errorf("Rotated condition %+v, want %s naming the end of the previous key", c, controllers.ReasonRotationWaiting)
		}
		return nil
	})
	rec := hashedRecord(t, ops, k)
	if rec.Digest != first.Digest || rec.Previous == nil || rec.Previous.Digest != keys.DigestOf(original) || !rec.Previous.EndsAt.Equal(first.Previous.EndsAt) {
		t.Errorf("the second rotation changed the record: current kept %v, previous kept %v", rec.Digest == first.Digest, rec.Previous != nil && rec.Previous.Digest == keys.DigestOf(original))
	}
	if cur, next := delivered(t, k); cur != second || next != "" {
		t.Errorf("delivery Secret changed: api-key kept %v, staged %v", cur == second, next != "")
	}

	// The request withdrawn (the value handled put back): nothing is
	// announced any more, and the condition is the last rotation's again.
	requestRotation(t, getKey(t, ns, "k"), "first")
	testenv.Eventually(t, 20*time.Second, func() error {
		c := meta.FindStatusCondition(getKey(t, ns, "k").Status.Conditions, keywardv1alpha1.ConditionRotated)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != controllers.ReasonRotated {
			return fmt.Errorf("Rotated condition %+v after the request was withdrawn, want True %s", c, controllers.ReasonRotated)
		}
		return nil
	})
}

// TestRotationMovesTheLastUse: the uses status.lastUsedTime recorded
// before a rotation were the replaced key's. After it they are reported as
// the previous key's, and lastUsedTime waits for the new key's first use:
// a responder asking whether a leaked previous key was used must not read
// "never", nor the new key be credited with its uses.
func TestRotationMovesTheLastUse(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, k, original := issuedForRotation(t, func(ns string) *keywardv1alpha1.APIKey { return rotatingKey(ns, 24*time.Hour, time.Hour) })
	ns := k.Namespace
	oldID := getKey(t, ns, "k").Status.KeyID
	used := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	patch := client.MergeFrom(k.DeepCopy())
	k.Status.LastUsedTime = &used
	if err := env.Client.Status().Patch(context.Background(), k, patch); err != nil {
		t.Fatalf("recording a use as the verifier does: %v", err)
	}

	requestRotation(t, k, "now")
	waitRotated(t, ops, k, original)
	testenv.Eventually(t, 20*time.Second, func() error {
		st := getKey(t, ns, "k").Status
		r := st.Rotation
		if r == nil || r.PreviousKeyID != oldID || r.PreviousKeyLastUsedTime == nil || !r.PreviousKeyLastUsedTime.Equal(&used) || st.LastUsedTime != nil {
			return fmt.Errorf("status: lastUsedTime %v, rotation %+v; want lastUsedTime empty and previousKeyLastUsedTime %s for %s", st.LastUsedTime, r, used.UTC().Format(time.RFC3339), oldID)
		}
		return nil
	})
	if got := getKey(t, ns, "k").LastUsed(); got == nil || !got.Equal(&used) {
		t.Errorf("LastUsed() = %v after the rotation, want the previous key's %s (deletion protection counts it)", got, used.UTC().Format(time.RFC3339))
	}
}

// TestLostSuccessorReplaced: a tenant who reads api-key-next between the
// commit and the promotion, then deletes the delivery Secret, holds the
// successor. It is not left working: a new successor replaces it and is
// delivered at once, and the previous key keeps the end its rotation
// announced.
func TestLostSuccessorReplaced(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
	startManager(t, ops, []string{ns}, func(o *manager.Options) { o.PromoteAfter = 3 * time.Second })
	k := rotatingKey(ns, 24*time.Hour, time.Hour)
	create(t, k)
	k = waitPhase(t, ns, k.Name, keywardv1alpha1.APIKeyActive)
	original, _ := delivered(t, k)

	requestRotation(t, k, "now")
	var lost string
	var committed *record.Record
	testenv.Eventually(t, 20*time.Second, func() error {
		_, next := delivered(t, k)
		rec := hashedRecord(t, ops, k)
		if next == "" || !rec.Rotating || rec.Digest != keys.DigestOf(next) {
			return fmt.Errorf("successor staged %v, committed %v", next != "", rec.Rotating)
		}
		lost, committed = next, rec
		return nil
	})
	if err := env.Client.Delete(context.Background(), deliverySecret(t, k)); err != nil {
		t.Fatalf("deleting the delivery Secret before the promotion: %v", err)
	}

	now := waitRotated(t, ops, k, original)
	if now == lost {
		t.Fatal("the successor read from api-key-next before the delivery Secret was deleted was promoted")
	}
	rec := hashedRecord(t, ops, k)
	if rec.Digest == keys.DigestOf(lost) || !rec.Previous.EndsAt.Equal(committed.Previous.EndsAt) {
		t.Errorf("hashed record: the lost successor is current %v; previous key's end %s, want %s as announced",
			rec.Digest == keys.DigestOf(lost), rec.Previous.EndsAt, committed.Previous.EndsAt)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		c := meta.FindStatusCondition(getKey(t, ns, "k").Status.Conditions, keywardv1alpha1.ConditionRotated)
		if c == nil || c.Reason != controllers.ReasonRotated || !strings.Contains(c.Message, rec.KeyID) {
			return fmt.Errorf("Rotated condition %+v, want %s naming %s", c, controllers.ReasonRotated, rec.KeyID)
		}
		return nil
	})
}

// TestRotationOverlapEndsByExpiry: a key rotated less than its overlap
// before it expires reports its previous key working until the expiry, not
// beyond, as the verifier holds it.
func TestRotationOverlapEndsByExpiry(t *testing.T) {
	env.Need(t)
	t.Parallel()
	expiry := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	ops, k, original := issuedForRotation(t, func(ns string) *keywardv1alpha1.APIKey {
		return testgen.APIKey(ns, "k", "acme", testgen.WithExpiry(expiry))
	})
	ns := k.Namespace
	requestRotation(t, k, "near-expiry")
	waitRotated(t, ops, k, original)
	if end := hashedRecord(t, ops, k).Previous.EndsAt; !end.Equal(expiry) {
		t.Errorf("the previous key ends at %s, want the key's expiry %s", end, expiry)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		r := getKey(t, ns, "k").Status.Rotation
		if r == nil || r.PreviousKeyExpiresAt == nil || !r.PreviousKeyExpiresAt.Time.Equal(expiry) {
			return fmt.Errorf("status.rotation %+v, want previousKeyExpiresAt %s", r, expiry)
		}
		return nil
	})

	// expiresAt moved earlier after the rotation ends the previous key
	// too, as the verifier holds it: status says so.
	sooner := expiry.Add(-10 * time.Minute)
	update(t, getKey(t, ns, "k"), func(k *keywardv1alpha1.APIKey) { k.Spec.ExpiresAt = &metav1.Time{Time: sooner} })
	testenv.Eventually(t, 10*time.Second, func() error {
		r := getKey(t, ns, "k").Status.Rotation
		if r == nil || r.PreviousKeyExpiresAt == nil || !r.PreviousKeyExpiresAt.Time.Equal(sooner) {
			return fmt.Errorf("status.rotation %+v, want previousKeyExpiresAt %s, the expiry moved earlier", r, sooner)
		}
		return nil
	})
}

// TestNothingRotatesByAccident: a deleted delivery Secret, a manager
// restart (a full relist) and a resync leave the key as it is, and so does
// a rotate value present at creation.
func TestNothingRotatesByAccident(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
	m := startManager(t, ops, []string{ns})
	k := rotatingKey(ns, 24*time.Hour, time.Hour)
	k.Annotations[keywardv1alpha1.AnnotationRotate] = "there-at-creation"
	create(t, k)
	waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	before := hashedRecord(t, ops, k)

	if err := env.Client.Delete(context.Background(), deliverySecret(t, k)); err != nil {
		t.Fatal(err)
	}
	m.stop()
	m = startManager(t, ops, []string{ns})
	m.allIdle(t, counts{})
	after := hashedRecord(t, ops, k)
	if after.Digest != before.Digest || after.Previous != nil || after.Rotating {
		t.Errorf("the key rotated: digest changed %v, previous %+v, rotating %v", after.Digest != before.Digest, after.Previous, after.Rotating)
	}
	if s := deliverySecret(t, k); s != nil {
		t.Errorf("the deleted delivery Secret was written again")
	}
	k = getKey(t, ns, "k")
	if r := k.Status.Rotation; r == nil || r.LastRotateRequest != "there-at-creation" || r.PreviousKeyID != "" {
		t.Errorf("status.rotation %+v: want the value present at creation handled, no previous key", r)
	}
}

// TestScheduledRotation: at spec.rotation.every after the key was minted a
// successor replaces it; status tells when the next one comes.
func TestScheduledRotation(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	fake := clocktesting.NewFakeClock(time.Now())
	create(t, testgen.KeyGroup(ns, "things", testgen.WithMaxKeyLifetime(100*time.Hour)), testgen.Application(ns, "acme", "things"))
	startManager(t, ops, []string{ns}, withClock(fake), func(o *manager.Options) { o.PromoteAfter = time.Second })
	// Under maxKeyLifetime, a rotating key needs no expiresAt.
	k := rotatingKey(ns, 48*time.Hour, 24*time.Hour)
	create(t, k)
	k = waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	original, _ := delivered(t, k)
	next := k.Status.Rotation.NextRotationAt
	if next == nil || next.Sub(fake.Now()) > 48*time.Hour || next.Sub(fake.Now()) < 47*time.Hour {
		t.Fatalf("status.rotation %+v, want the next rotation 48h after issue", k.Status.Rotation)
	}

	// The controller comes back at nextRotationAt by itself; a test clock
	// does not wake it, an edit does.
	poke := func() {
		update(t, k, func(k *keywardv1alpha1.APIKey) { k.Spec.Description = fmt.Sprint(fake.Now().UnixNano()) })
	}
	fake.Step(48 * time.Hour)
	poke()
	testenv.Eventually(t, 20*time.Second, func() error {
		if !hashedRecord(t, ops, k).Rotating {
			return errors.New("not rotating yet")
		}
		return nil
	})
	if cur, staged := delivered(t, k); cur != original || staged == "" {
		t.Errorf("while the successor is being made live: api-key changed %v, staged %v", cur != original, staged != "")
	}
	fake.Step(2 * time.Second)
	poke()
	now := waitRotated(t, ops, k, original)
	k = getKey(t, ns, "k")
	testenv.Eventually(t, 10*time.Second, func() error {
		k = getKey(t, ns, "k")
		r := k.Status.Rotation
		if r == nil || r.RotatedAt == nil || r.NextRotationAt == nil || k.Status.KeyID != keyID(t, now) {
			return fmt.Errorf("status %+v", r)
		}
		if d := r.NextRotationAt.Sub(r.RotatedAt.Time); d != 48*time.Hour {
			return fmt.Errorf("next rotation %v after the last, want 48h", d)
		}
		if d := r.PreviousKeyExpiresAt.Sub(r.RotatedAt.Time); d != 24*time.Hour {
			return fmt.Errorf("previous key ends %v after the rotation, want 24h", d)
		}
		return nil
	})
}

// TestRotationNeedsTheGrant: a rotation asks again whether the key's
// creator may grant its scopes; once they may not, it is refused with a
// condition, and the current key keeps working.
func TestRotationNeedsTheGrant(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	ctx := context.Background()
	app := testgen.Application(ns, "acme", "things")
	app.Annotations[keywardv1alpha1.AnnotationCreatedBy] = "alice" // and the key, below
	create(t, testgen.KeyGroup(ns, "things"), app)
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "granter"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{keywardv1alpha1.GroupVersion.Group}, Resources: []string{"scopes"}, Verbs: []string{"grant"}, ResourceNames: []string{"things.read"},
	}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "granter"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "granter"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}}
	create(t, role, binding)
	startManager(t, ops, []string{ns}, func(o *manager.Options) { o.PromoteAfter = time.Millisecond })
	k := testgen.APIKey(ns, "k", "acme")
	k.Annotations[keywardv1alpha1.AnnotationGrantCheck] = `{"username":"alice","groups":["system:authenticated"]}`
	create(t, k)
	waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	original, _ := delivered(t, k)

	if err := env.Client.Delete(ctx, binding); err != nil {
		t.Fatal(err)
	}
	requestRotation(t, k, "after-the-grant-went")
	testenv.Eventually(t, 20*time.Second, func() error {
		k = getKey(t, ns, "k")
		c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionRotated)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != controllers.ReasonRotationGrantRevoked {
			return fmt.Errorf("Rotated condition %+v", c)
		}
		if !strings.Contains(c.Message, "alice") || !strings.Contains(c.Message, "keeps working") {
			return fmt.Errorf("the condition does not say who and what happens: %q", c.Message)
		}
		return nil
	})
	if k.Status.Phase != keywardv1alpha1.APIKeyActive {
		t.Errorf("phase %s after a refused rotation", k.Status.Phase)
	}
	if cur, staged := delivered(t, k); cur != original || staged != "" {
		t.Errorf("a refused rotation changed the delivery Secret")
	}
	if rec := hashedRecord(t, ops, k); rec.Digest != keys.DigestOf(original) || rec.State != record.StateActive || rec.Previous != nil {
		t.Errorf("a refused rotation changed the hashed record")
	}

	// The grant back, the same request goes through, at the next
	// reconcile (an edit here; the controller also retries by itself).
	binding.ResourceVersion = ""
	create(t, binding)
	update(t, k, func(k *keywardv1alpha1.APIKey) { k.Spec.Description = "grant restored" })
	waitRotated(t, ops, k, original)
}

// TestRotationNeedsTheRequestersGrant: a rotation issues a new key, so the
// user who asked for it (keyward.dev/rotation-requested-by, which the
// mutating webhook records) must be able to grant the key's scopes too,
// not only its creator: otherwise a user who may read the delivery Secret
// but not grant the scopes would get a new key of them by asking.
func TestRotationNeedsTheRequestersGrant(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	app := testgen.Application(ns, "acme", "things")
	app.Annotations[keywardv1alpha1.AnnotationCreatedBy] = "admin" // and the key, below
	create(t, testgen.KeyGroup(ns, "things"), app)
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "granter"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{keywardv1alpha1.GroupVersion.Group}, Resources: []string{"scopes"}, Verbs: []string{"grant"}, ResourceNames: []string{"things.read"},
	}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "granter"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "granter"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "bob"}}}
	create(t, role, binding)
	startManager(t, ops, []string{ns}, func(o *manager.Options) { o.PromoteAfter = time.Millisecond })
	k := testgen.APIKey(ns, "k", "acme")
	k.Annotations[keywardv1alpha1.AnnotationGrantCheck] = `{"username":"admin","groups":["system:masters","system:authenticated"]}`
	create(t, k)
	waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	original, _ := delivered(t, k)

	// alice may grant nothing; she asks for a rotation.
	update(t, k, func(k *keywardv1alpha1.APIKey) {
		k.Annotations[keywardv1alpha1.AnnotationRotate] = "by-alice"
		k.Annotations[keywardv1alpha1.AnnotationRotationRequestedBy] = `{"username":"alice","groups":["system:authenticated"]}`
	})
	testenv.Eventually(t, 20*time.Second, func() error {
		c := meta.FindStatusCondition(getKey(t, ns, "k").Status.Conditions, keywardv1alpha1.ConditionRotated)
		if c == nil || c.Reason != controllers.ReasonRotationGrantRevoked || !strings.Contains(c.Message, `user "alice", who asked for the rotation, may not grant scope "read"`) {
			return fmt.Errorf("Rotated condition %+v, want the rotation refused for alice", c)
		}
		return nil
	})
	if cur, staged := delivered(t, k); cur != original || staged != "" {
		t.Errorf("a rotation alice may not ask for changed the delivery Secret")
	}

	// bob may grant read, the key's scope: his request goes through.
	update(t, k, func(k *keywardv1alpha1.APIKey) {
		k.Annotations[keywardv1alpha1.AnnotationRotate] = "by-bob"
		k.Annotations[keywardv1alpha1.AnnotationRotationRequestedBy] = `{"username":"bob","groups":["system:authenticated"]}`
	})
	waitRotated(t, ops, k, original)
}

// TestImmutableDeliverySecretReplaced: a delivery Secret created immutable
// (by keyward before rotation existed) is replaced at the first rotation,
// with an event.
func TestImmutableDeliverySecretReplaced(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	ctx := context.Background()
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"))
	m := startManager(t, ops, []string{ns}, func(o *manager.Options) { o.PromoteAfter = time.Millisecond })
	k := testgen.APIKey(ns, "k", "acme")
	create(t, k)
	waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	// As the previous release left it: the same Secret, immutable.
	m.stop()
	old := deliverySecret(t, k)
	if err := env.Client.Delete(ctx, old); err != nil {
		t.Fatal(err)
	}
	old.ResourceVersion, old.UID, old.Immutable = "", "", ptr.To(true)
	create(t, old)
	original := string(old.Data[record.DeliveryAPIKey])

	startManager(t, ops, []string{ns}, func(o *manager.Options) { o.PromoteAfter = time.Millisecond })
	requestRotation(t, k, "first")
	waitRotated(t, ops, k, original)
	if s := deliverySecret(t, k); s.Immutable != nil && *s.Immutable {
		t.Errorf("the delivery Secret is still immutable")
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		var events corev1.EventList
		if err := env.Client.List(ctx, &events, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == controllers.EventDeliverySecretReplaced && e.InvolvedObject.Name == "k" && strings.Contains(e.Message, "restart") {
				return nil
			}
		}
		return errors.New("no DeliverySecretReplaced event telling to restart pods")
	})
}

// TestHeldRotationEndsUnderMaxLifetime: under a KeyGroup's
// maxKeyLifetime, each key of a rotating key without expiresAt works for at
// most that long after it was issued: its hashed record and status say so.
// A rotation held past it (a Secret in the way, which a tenant can make)
// does not keep the key working; the condition says until when it works,
// then that it stopped. The next rotation's key gets its own end, and the
// key it replaces keeps the one it had. Without maxKeyLifetime a rotating
// key has no end.
func TestHeldRotationEndsUnderMaxLifetime(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	fake := clocktesting.NewFakeClock(time.Now())
	create(t, testgen.KeyGroup(ns, "things", testgen.WithMaxKeyLifetime(100*time.Hour)), testgen.Application(ns, "acme", "things"),
		testgen.KeyGroup(ns, "free"), testgen.Application(ns, "other", "free"))
	startManager(t, ops, []string{ns}, withClock(fake), func(o *manager.Options) { o.PromoteAfter = time.Second })
	const term = 100 * time.Hour // maxKeyLifetime; every + overlap is 72h
	k := rotatingKey(ns, 48*time.Hour, 24*time.Hour)
	free := rotatingKey(ns, 48*time.Hour, 24*time.Hour)
	free.Name, free.Spec.Application = "free", "other"
	create(t, k, free)
	k = waitPhase(t, ns, "k", keywardv1alpha1.APIKeyActive)
	first := hashedRecord(t, ops, k)
	if want := first.IssuedAt.Add(term); !first.ExpiresAt.Equal(want) {
		t.Fatalf("the hashed record ends the key at %v, want %v (issued %v, plus maxKeyLifetime)", first.ExpiresAt, want, first.IssuedAt)
	}
	if st := getKey(t, ns, "k").Status.ExpiresAt; st == nil || !st.Time.Equal(first.ExpiresAt) {
		t.Errorf("status.expiresAt %v, want the key's end %v", st, first.ExpiresAt)
	}
	if rec := hashedRecord(t, ops, waitPhase(t, ns, "free", keywardv1alpha1.APIKeyActive)); !rec.ExpiresAt.IsZero() {
		t.Errorf("without maxKeyLifetime the key ends at %v, want never", rec.ExpiresAt)
	}

	// A Secret in the way: the delivery Secret no longer the key's.
	update(t, deliverySecret(t, k), func(s *corev1.Secret) { s.OwnerReferences = nil })
	poke := func() {
		update(t, k, func(k *keywardv1alpha1.APIKey) { k.Spec.Description = fmt.Sprint(fake.Now().UnixNano()) })
	}
	fake.Step(48 * time.Hour)
	poke()
	until := first.IssuedAt.Add(term).UTC().Format(time.RFC3339)
	testenv.Eventually(t, 20*time.Second, func() error {
		c := meta.FindStatusCondition(getKey(t, ns, "k").Status.Conditions, keywardv1alpha1.ConditionRotated)
		if c == nil || c.Reason != controllers.ReasonRotationSecretConflict || !strings.Contains(c.Message, "the current key works until "+until) {
			return fmt.Errorf("Rotated condition %+v, want %s saying the key works until %s", c, controllers.ReasonRotationSecretConflict, until)
		}
		return nil
	})
	if rec := hashedRecord(t, ops, k); rec.Digest != first.Digest || !rec.ExpiresAt.Equal(first.ExpiresAt) {
		t.Errorf("while the rotation is held: the key changed %v, its end %v (want %v)", rec.Digest != first.Digest, rec.ExpiresAt, first.ExpiresAt)
	}

	// Past the end: the key no longer works, and the condition says so.
	fake.Step(60 * time.Hour)
	poke()
	testenv.Eventually(t, 20*time.Second, func() error {
		c := meta.FindStatusCondition(getKey(t, ns, "k").Status.Conditions, keywardv1alpha1.ConditionRotated)
		if c == nil || !strings.Contains(c.Message, "the current key stopped working at "+until) {
			return fmt.Errorf("Rotated condition %+v, want it to say the key stopped working at %s", c, until)
		}
		return nil
	})
	// The Secret in the way removed: the rotation goes on.
	if err := env.Client.Delete(context.Background(), deliverySecret(t, k)); err != nil {
		t.Fatal(err)
	}
	fake.Step(time.Second)
	poke()
	var second *record.Record
	testenv.Eventually(t, 20*time.Second, func() error {
		if second = hashedRecord(t, ops, k); second.Digest == first.Digest {
			return fmt.Errorf("not rotated yet: %+v", getKey(t, ns, "k").Status.Conditions)
		}
		return nil
	})
	if want := second.IssuedAt.Add(term); !second.ExpiresAt.Equal(want) {
		t.Errorf("the successor ends at %v, want %v", second.ExpiresAt, want)
	}
	if p := second.Previous; p == nil || p.Digest != first.Digest || p.EndsAt.After(first.ExpiresAt) {
		t.Errorf("previous key %+v, want the first key, ending no later than %v", p, first.ExpiresAt)
	}
}
