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

package index

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/record"
)

// The book's bookkeeping, fed as the informers feed it (Register's
// handlers call update); the controllers' and webhooks' suites run it
// against a real API server.

func bookKey(ns, name, app string, uid types.UID) *keywardv1alpha1.APIKey {
	k := &keywardv1alpha1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid}}
	k.Spec.Application = keywardv1alpha1.ObjectName(app)
	return k
}

// hashedSecret is a Secret of a key of Application acme in ns.
func hashedSecret(uid types.UID, state record.State, hashed bool) *corev1.Secret {
	l := map[string]string{record.LabelNamespace: "ns", record.LabelApplication: "acme", record.LabelAPIKeyUID: string(uid), record.LabelState: string(state)}
	if hashed {
		l[record.LabelHashedKey] = "true"
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "keyward-system", Name: record.SecretName(string(uid)), Labels: l}}
}

// read returns copies of what the book holds of Application acme in ns.
func read(b *Book, ns string) (keys map[types.UID]string, hashed map[types.UID]record.State) {
	keys = map[types.UID]string{}
	b.Read(ns, "acme", func(s Siblings) {
		for uid, k := range s.Keys {
			keys[uid] = k.Name
		}
		hashed = maps.Clone(s.Hashed)
	})
	return keys, hashed
}

func TestBookFollowsTheCache(t *testing.T) {
	b := NewBook("keyward-system")
	feedKey, feedSecret := b.update, b.update

	a1, a2 := bookKey("ns", "a1", "acme", "u1"), bookKey("ns", "a2", "acme", "u2")
	feedKey(nil, a1)
	feedKey(nil, a2)
	feedKey(nil, bookKey("other", "a1", "acme", "u3")) // the same application name in another namespace
	feedKey(nil, bookKey("ns", "b1", "globex", "u4"))  // another application
	feedSecret(nil, hashedSecret("u1", record.StateActive, true))
	feedSecret(nil, hashedSecret("u9", record.StateActive, false))  // not a hashed Secret
	feedSecret(nil, hashedSecret("u8", record.StateDisabled, true)) // minted, its APIKey not seen yet
	forged := hashedSecret("u2", record.StateActive, true)          // a tenant's Secret, labelled as keyward's
	forged.Namespace = "ns"
	feedSecret(nil, forged)
	stray := hashedSecret("u1", record.StateRevoked, true) // another Secret carrying u1's labels
	stray.Name = "apikey-u1-copy"
	feedSecret(nil, stray)

	keys, hashed := read(b, "ns")
	if want := map[types.UID]string{"u1": "a1", "u2": "a2"}; !maps.Equal(keys, want) {
		t.Errorf("keys of ns/acme = %v, want %v", keys, want)
	}
	if want := map[types.UID]record.State{"u1": record.StateActive, "u8": record.StateDisabled}; !maps.Equal(hashed, want) {
		t.Errorf("hashed of ns/acme = %v, want %v", hashed, want)
	}

	// A revoked key's record changes state; a deleted key leaves, also
	// when the informer only has its last state (a tombstone's object).
	feedSecret(hashedSecret("u1", record.StateActive, true), hashedSecret("u1", record.StateRevoked, true))
	b.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "ns/a2", Obj: a2})
	feedSecret(hashedSecret("u8", record.StateDisabled, true), nil)
	keys, hashed = read(b, "ns")
	if want := map[types.UID]string{"u1": "a1"}; !maps.Equal(keys, want) {
		t.Errorf("after the delete, keys of ns/acme = %v, want %v", keys, want)
	}
	if want := map[types.UID]record.State{"u1": record.StateRevoked}; !maps.Equal(hashed, want) {
		t.Errorf("after the revocation, hashed of ns/acme = %v, want %v", hashed, want)
	}

	// A new version of an object replaces the old one in one step.
	a1v2 := a1.DeepCopy()
	a1v2.Status.Phase = keywardv1alpha1.APIKeyActive
	feedKey(a1, a1v2)
	b.Read("ns", "acme", func(s Siblings) {
		if got := s.Keys["u1"].Status.Phase; got != keywardv1alpha1.APIKeyActive {
			t.Errorf("after an update, the book holds phase %q of a1, want Active", got)
		}
		if s.ActiveOrDisabled != 1 {
			t.Errorf("after a1 became Active, ActiveOrDisabled = %d, want 1", s.ActiveOrDisabled)
		}
	})
	feedKey(a1v2, a1v2) // an informer's resync: the same version again
	b.Read("ns", "acme", func(s Siblings) {
		if s.ActiveOrDisabled != 1 {
			t.Errorf("after a resync, ActiveOrDisabled = %d, want 1", s.ActiveOrDisabled)
		}
	})

	feedKey(a1v2, nil)
	feedSecret(hashedSecret("u1", record.StateRevoked, true), nil)
	if keys, hashed := read(b, "ns"); len(keys) != 0 || len(hashed) != 0 {
		t.Errorf("after everything left, ns/acme holds %v and %v", keys, hashed)
	}
	b.Read("ns", "acme", func(s Siblings) {
		if s.ActiveOrDisabled != 0 || s.Occupying != 0 {
			t.Errorf("after everything left, ns/acme counts %d Active or Disabled keys and %d occupying Secrets", s.ActiveOrDisabled, s.Occupying)
		}
	})
	if keys, _ := read(b, "other"); len(keys) != 1 {
		t.Errorf("other/acme holds %v, want its one key", keys)
	}
}

func TestBookWaitForKey(t *testing.T) {
	b := NewBook("keyward-system")
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- b.WaitForKey(ctx, "ns", "acme", "u2", time.Minute) }()

	// Another key arriving does not end the wait; this one does.
	b.OnAdd(bookKey("ns", "a1", "acme", "u1"), false)
	stillWaiting(t, done, "WaitForKey, before its key arrived")
	b.OnAdd(bookKey("ns", "a2", "acme", "u2"), false)
	returnsNil(t, done, "WaitForKey, once its key arrived")

	err := b.WaitForKey(ctx, "ns", "acme", "u3", 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "u3") || !strings.Contains(err.Error(), "ns/acme") {
		t.Errorf("WaitForKey for a key that never comes = %v, want an error naming the key and its application", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.WaitForKey(cancelled, "ns", "acme", "u3", time.Minute); err == nil {
		t.Error("WaitForKey with an ended context returned no error")
	}
}

// syncedAfter is a handler registration that reports synced once its
// channel is closed.
type syncedAfter chan struct{}

func (c syncedAfter) HasSynced() bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestBookWaitsForItsFirstLists: until the book's handlers have taken in
// what the informers listed first, a count from it could be too low (a
// manager just started, its hashed Secrets still arriving), so whoever
// counts waits, and the wait ends with an error rather than a count.
func TestBookWaitsForItsFirstLists(t *testing.T) {
	b := NewBook("keyward-system")
	secrets := make(syncedAfter)
	b.regs = []interface{ HasSynced() bool }{closedRegistration(), secrets}
	b.OnAdd(bookKey("ns", "a1", "acme", "u1"), true)
	ctx := context.Background()

	if b.Synced() {
		t.Fatal("Synced with the Secrets' first list not taken in")
	}
	err := b.WaitForKey(ctx, "ns", "acme", "u1", 30*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "first lists") {
		t.Errorf("WaitForKey before the book is synced, for a key it holds = %v, want an error saying it has not synced", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.WaitForSynced(ctx, time.Minute) }()
	stillWaiting(t, done, "WaitForSynced, before the Secrets were synced")
	close(secrets)
	returnsNil(t, done, "WaitForSynced, once synced")
	if err := b.WaitForKey(ctx, "ns", "acme", "u1", time.Minute); err != nil {
		t.Errorf("WaitForKey once synced = %v", err)
	}
}

func closedRegistration() syncedAfter {
	c := make(syncedAfter)
	close(c)
	return c
}

// stillWaiting fails if a wait reports on done within 50 ms.
func stillWaiting(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s: returned %v", what, err)
	case <-time.After(50 * time.Millisecond):
	}
}

// returnsNil fails unless a wait reports no error on done within a minute.
func returnsNil(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s: did not return", what)
	}
}
