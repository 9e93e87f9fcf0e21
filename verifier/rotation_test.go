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

package verifier_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

// deliveryWatch polls a key's delivery Secret and asks the verifier about
// the key its api-key holds, until stopped: a consumer that reads the
// Secret must never find a key the verifier refuses.
type deliveryWatch struct {
	polls, refused atomic.Int64
	seen           sync.Map // key IDs read from api-key
	stop           chan struct{}
	done           chan struct{}
}

func (s *stack) watchDelivery(t *testing.T, name string) *deliveryWatch {
	t.Helper()
	w := &deliveryWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			secret := &corev1.Secret{}
			if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: name}, secret); err != nil {
				continue
			}
			plaintext := string(secret.Data[record.DeliveryAPIKey])
			w.seen.Store(string(secret.Data[record.DeliveryKeyID]), true)
			w.polls.Add(1)
			code, h, err := s.askErr(plaintext, "/v1/things/1")
			if err != nil {
				t.Errorf("asking the verifier: %v", err)
				continue
			}
			if code != 200 {
				w.refused.Add(1)
				t.Errorf("the delivery Secret holds key %s, which the verifier refuses: %d %s", secret.Data[record.DeliveryKeyID], code, h.Get("X-Auth-Reason"))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *deliveryWatch) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// applyRotate sets keyward.dev/rotate on the key by server-side apply, as a
// GitOps tool would, with its own field manager.
func (s *stack) applyRotate(t *testing.T, name, value string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(keywardv1alpha1.GroupVersion.String())
	u.SetKind("APIKey")
	u.SetNamespace(s.ns)
	u.SetName(name)
	u.SetAnnotations(map[string]string{keywardv1alpha1.AnnotationRotate: value})
	if err := env.Client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("gitops"), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
}

// delivered returns the key the delivery Secret's api-key holds, once it
// is not one of not.
func (s *stack) delivered(t *testing.T, k *keywardv1alpha1.APIKey, not ...string) keys.Key {
	t.Helper()
	var got keys.Key
	testenv.Eventually(t, 20*time.Second, func() error {
		secret := &corev1.Secret{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: k.DeliverySecretName()}, secret); err != nil {
			return err
		}
		kk, err := keys.Parse(string(secret.Data[record.DeliveryAPIKey]))
		if err != nil {
			return err
		}
		for _, n := range not {
			if kk.ID() == n {
				return fmt.Errorf("api-key still holds key %s", n)
			}
		}
		if _, staged := secret.Data["api-key-next"]; staged {
			return fmt.Errorf("a successor is still staged")
		}
		got = kk
		return nil
	})
	return got
}

// keyStatus waits until the APIKey's status satisfies ok.
func (s *stack) keyStatus(t *testing.T, name string, ok func(*keywardv1alpha1.APIKey) error) *keywardv1alpha1.APIKey {
	t.Helper()
	k := &keywardv1alpha1.APIKey{}
	testenv.Eventually(t, 20*time.Second, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: name}, k); err != nil {
			return err
		}
		return ok(k)
	})
	return k
}

// TestRotationOverlap rotates a key on request, through server-side apply,
// with the manager and the verifier running against the API server: during
// the overlap both keys answer, each naming itself in X-Auth-Key; after it
// the previous key is refused as expired; the delivery Secret, polled
// throughout, never holds a key the verifier refuses; the same annotation
// value applied again, or restored after removal, never rotates again.
func TestRotationOverlap(t *testing.T) {
	const overlap = 6 * time.Second
	s := startStack(t, time.Minute, func(o *manager.Options) { o.MinRotationEvery = time.Second })
	s.setup(t)
	ctx := context.Background()
	key := testgen.APIKey(s.ns, "rotating", "acme")
	if key.Annotations == nil {
		key.Annotations = map[string]string{}
	}
	key.Annotations[keywardv1alpha1.AnnotationRotate] = "present-at-creation"
	key.Spec.Rotation = &keywardv1alpha1.APIKeyRotation{Every: metav1.Duration{Duration: time.Hour}, Overlap: &metav1.Duration{Duration: overlap}}
	if err := env.Client.Create(ctx, key); err != nil {
		t.Fatal(err)
	}
	k := s.keyStatus(t, key.Name, func(k *keywardv1alpha1.APIKey) error {
		if !ready(k) || k.Status.Rotation == nil || k.Status.Rotation.NextRotationAt == nil {
			return fmt.Errorf("not Ready with a next rotation: %+v", k.Status)
		}
		return nil
	})
	first := s.delivered(t, k)
	if r := k.Status.Rotation; r.PreviousKeyID != "" || r.LastRotateRequest != "present-at-creation" {
		t.Errorf("a value present at creation: status.rotation %+v, want it handled without a rotation", r)
	}
	if next := k.Status.Rotation.NextRotationAt.Time; next.Before(time.Now().Add(59*time.Minute)) || next.After(time.Now().Add(time.Hour)) {
		t.Errorf("nextRotationAt %v, want an hour after issue", next)
	}
	w := s.watchDelivery(t, k.DeliverySecretName())

	// Applied twice, the same value rotates once.
	s.applyRotate(t, key.Name, "2026-11-30T12:00:00Z")
	s.applyRotate(t, key.Name, "2026-11-30T12:00:00Z")
	second := s.delivered(t, k, first.ID())
	k = s.keyStatus(t, key.Name, func(k *keywardv1alpha1.APIKey) error {
		r := k.Status.Rotation
		if k.Status.KeyID != second.ID() || r == nil || r.PreviousKeyID != first.ID() || r.PreviousKeyExpiresAt == nil || r.RotatedAt == nil ||
			!meta.IsStatusConditionTrue(k.Status.Conditions, keywardv1alpha1.ConditionRotated) {
			return fmt.Errorf("status after the rotation: keyID %s, rotation %+v, conditions %+v", k.Status.KeyID, r, k.Status.Conditions)
		}
		return nil
	})
	end := k.Status.Rotation.PreviousKeyExpiresAt.Time
	if d := end.Sub(k.Status.Rotation.RotatedAt.Time); d != overlap {
		t.Errorf("the previous key ends %v after the rotation, want the overlap, %v", d, overlap)
	}

	// During the overlap: both keys work, each named in X-Auth-Key.
	for _, kk := range []keys.Key{first, second} {
		code, h := s.ask(t, kk.Plaintext(), "/v1/things/1")
		if code != 200 || h.Get("X-Auth-Key") != kk.ID() {
			t.Errorf("key %s in the overlap: %d, X-Auth-Key %q", kk.ID(), code, h.Get("X-Auth-Key"))
		}
	}
	if time.Now().After(end) {
		t.Fatalf("the overlap ended (%v) before both keys were asked: the machine is too slow for a %v overlap", end, overlap)
	}

	// After the overlap: the previous key is refused as expired, from the
	// second its overlap ends (the verifier's expiry is to the second).
	// Polled from now until the verifier says so, at most 5 s past the end.
	start := time.Now()
	waited := s.within(t, first.Plaintext(), 401, time.Until(end)+5*time.Second)
	refusedAfter := start.Add(waited).Sub(end)
	if code, reason := s.verify(t, first.Plaintext(), "/v1/things/1"); code != 401 || reason != "expired" {
		t.Errorf("the previous key after its overlap: %d %s, want 401 expired", code, reason)
	}
	if code, _ := s.verify(t, second.Plaintext(), "/v1/things/1"); code != 200 {
		t.Errorf("the current key after the overlap: %d", code)
	}
	t.Logf("previous key refused %v after its overlap's end was reached", refusedAfter)
	// The verifier recorded the previous key's use in the overlap apart.
	s.keyStatus(t, key.Name, func(k *keywardv1alpha1.APIKey) error {
		if r := k.Status.Rotation; r == nil || r.PreviousKeyLastUsedTime == nil {
			return fmt.Errorf("no previousKeyLastUsedTime: %+v", r)
		}
		return nil
	})

	// Removed, then restored with the same value (a GitOps tool putting
	// back what it had): no rotation. A new value afterwards rotates once,
	// from the second key: nothing rotated in between.
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"keyward.dev/rotate":null}}}`))
	if err := env.Client.Patch(ctx, k, patch); err != nil {
		t.Fatal(err)
	}
	s.applyRotate(t, key.Name, "2026-11-30T12:00:00Z")
	s.applyRotate(t, key.Name, "2026-12-01T12:00:00Z")
	third := s.delivered(t, k, first.ID(), second.ID())
	s.keyStatus(t, key.Name, func(k *keywardv1alpha1.APIKey) error {
		if r := k.Status.Rotation; r == nil || r.PreviousKeyID != second.ID() || k.Status.KeyID != third.ID() || r.LastRotateRequest != "2026-12-01T12:00:00Z" {
			return fmt.Errorf("after the third value: keyID %s, rotation %+v", k.Status.KeyID, k.Status.Rotation)
		}
		return nil
	})
	// The poller reads the Secret every few milliseconds; it may not have
	// read it since the third key arrived.
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := w.seen.Load(third.ID()); !ok {
			return fmt.Errorf("the delivery Secret's poller has not read key %s yet", third.ID())
		}
		return nil
	})
	w.close()
	var ids []string
	w.seen.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
	t.Logf("delivery Secret polled %d times through two rotations: key IDs seen %v, refused %d", w.polls.Load(), ids, w.refused.Load())
	if len(ids) != 3 {
		t.Errorf("the delivery Secret held %d keys over two rotations, want 3: %v", len(ids), ids)
	}
}
