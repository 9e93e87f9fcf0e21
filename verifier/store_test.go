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

package verifier

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
)

// storeKey is one key as the reflector feeds it, and its plaintext.
type storeKey struct {
	plaintext string
	rec       record.Record
}

func newStoreKey(t testing.TB, name string) *storeKey {
	t.Helper()
	k, err := keys.Generate("st")
	if err != nil {
		t.Fatal(err)
	}
	return &storeKey{plaintext: k.Plaintext(), rec: record.Record{
		Digest: k.Digest(), KeyID: k.ID(), Namespace: "iot", KeyGroup: "devices", Application: "acme", APIKey: name,
		ExternalID: "ext-" + name, Scopes: []string{"status"}, State: record.StateActive,
	}}
}

func (k *storeKey) secret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "keyward-system", Name: "apikey-" + k.rec.APIKey}, Data: k.rec.SecretData()}
}

// verify asks the handler about k as nginx would and says what is wrong
// with the answer, or "".
func verifyKey(h *Handler, k *storeKey, want Reason) string {
	req := &Request{Namespace: "iot", KeyGroup: "devices", Method: "GET", URI: "/status",
		Authorization: []string{"Bearer " + k.plaintext}, Client: netip.MustParseAddr("203.0.113.9")}
	d := h.verify(req, h.now())
	switch {
	case d.Reason != want:
		return fmt.Sprintf("APIKey %s: answered %s, want %s", k.rec.APIKey, d.Reason, want)
	case want == ReasonOK && (d.entry.keyID[0] != k.rec.KeyID || d.entry.apiKey() != k.rec.APIKey || d.entry.profile.headerExtID[0] != k.rec.ExternalID):
		return fmt.Sprintf("APIKey %s: allowed as key %s of APIKey %s (%s), want key %s (%s)",
			k.rec.APIKey, d.entry.keyID[0], d.entry.apiKey(), d.entry.profile.headerExtID[0], k.rec.KeyID, k.rec.ExternalID)
	}
	return ""
}

func withCompactAfter(t *testing.T, n int) {
	old := compactAfter
	compactAfter = n
	t.Cleanup(func() { compactAfter = old })
}

// A verifier runs for months while keys come and go: what it holds must
// follow the keys that exist, and every answer must stay right as the
// store reclaims what deleted and updated keys left behind.
func TestStoreReclaimsWhatKeysLeaveBehind(t *testing.T) {
	withCompactAfter(t, 64)
	f := newFixture(t)
	ks := keyStore{f.store}
	var all []*storeKey
	for i := range 1000 {
		k := newStoreKey(t, fmt.Sprintf("k%04d", i))
		all = append(all, k)
		_ = ks.Add(k.secret())
	}
	// A use recorded before the store moves the key must not be lost.
	used := time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC).UnixNano()
	e, _ := f.store.lookup(all[7].rec.Digest, "iot", "devices")
	e.lastUsed.Store(used)

	// Disable every key, then enable it again: 2,000 entries left behind.
	for _, state := range []record.State{record.StateDisabled, record.StateActive} {
		for _, k := range all {
			k.rec.State = state
			_ = ks.Update(k.secret())
		}
		want := map[record.State]Reason{record.StateDisabled: ReasonDisabled, record.StateActive: ReasonOK}[state]
		for _, k := range all {
			if msg := verifyKey(f.handler, k, want); msg != "" {
				t.Fatal(msg)
			}
		}
	}
	for _, k := range all[:900] {
		_ = ks.Delete(k.secret())
	}
	for i, k := range all {
		want := ReasonOK
		if i < 900 {
			want = ReasonUnknown
		}
		if msg := verifyKey(f.handler, k, want); msg != "" {
			t.Fatal(msg)
		}
	}
	tbl := f.store.keys
	live := len(tbl.index)
	if want := 100 + 12; live != want { // and the fixture's own keys
		t.Fatalf("the store holds %d keys, want %d", live, want)
	}
	if dead := tbl.dead(); dead >= compactAfter && dead > live {
		t.Errorf("%d entries of deleted or updated keys are still held beside %d live ones", dead, live)
	}
	if tbl.used > 2*uint32(live)+uint32(compactAfter) { // #nosec G115 -- small
		t.Errorf("the store holds %d entries for %d keys, after 3,011 were written", tbl.used, live)
	}
	if e, _ := f.store.lookup(all[907].rec.Digest, "iot", "devices"); e == nil {
		t.Fatal("key 907 is gone")
	}
	if e, _ := f.store.lookup(all[7].rec.Digest, "iot", "devices"); e != nil {
		t.Fatal("deleted key 7 is still found")
	}
	// Key 950's last use, recorded now, survives the next compaction.
	e, _ = f.store.lookup(all[950].rec.Digest, "iot", "devices")
	e.lastUsed.Store(used)
	for range 3 {
		for _, k := range all[900:] {
			_ = ks.Update(k.secret())
		}
	}
	if e, _ = f.store.lookup(all[950].rec.Digest, "iot", "devices"); e.lastUsed.Load() != used {
		t.Errorf("the last use of key 950 was lost when the store moved it: %d, want %d", e.lastUsed.Load(), used)
	}
}

// Requests keep being answered, each with its own key's identity, while
// other keys are added, updated, deleted and the store compacts.
func TestStoreAnswersWhileKeysChange(t *testing.T) {
	withCompactAfter(t, 32)
	f := newFixture(t)
	ks := keyStore{f.store}
	stable := make([]*storeKey, 20)
	for i := range stable {
		stable[i] = newStoreKey(t, fmt.Sprintf("stable-%d", i))
		_ = ks.Add(stable[i].secret())
	}
	churn := make([]*storeKey, 200)
	for i := range churn {
		churn[i] = newStoreKey(t, fmt.Sprintf("churn-%d", i))
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for r := range 4 {
		wg.Go(func() {
			for i := r; !stop.Load(); i++ {
				if msg := verifyKey(f.handler, stable[i%len(stable)], ReasonOK); msg != "" {
					errs <- msg
					return
				}
			}
		})
	}
	for round := range 20 {
		for _, k := range churn {
			_ = ks.Add(k.secret())
		}
		for _, k := range churn[:100] {
			k.rec.State = record.StateRevoked
			_ = ks.Update(k.secret())
			k.rec.State = record.StateActive
		}
		for _, k := range churn {
			_ = ks.Delete(k.secret())
		}
		// A relist now and then, as after a watch expired.
		if round%7 == 6 {
			list := make([]any, 0, len(stable))
			for _, k := range stable {
				list = append(list, k.secret())
			}
			_ = ks.Replace(list, "")
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	for _, k := range churn {
		if msg := verifyKey(f.handler, k, ReasonUnknown); msg != "" {
			t.Error(msg)
		}
	}
}

// A refused key stays refused when compaction moves it: a refusal lost in
// the copy would turn a revoked key back on.
func TestStoreCompactionKeepsEveryRefusal(t *testing.T) {
	withCompactAfter(t, 64)
	f := newFixture(t)
	ks := keyStore{f.store}
	states := map[record.State]Reason{
		record.StateActive: ReasonOK, record.StateDisabled: ReasonDisabled,
		record.StateRevoked: ReasonRevoked, record.StateExpired: ReasonExpired,
	}
	var held []*storeKey
	for state := range states {
		for i := range 25 {
			k := newStoreKey(t, fmt.Sprintf("%s-%02d", state, i))
			k.rec.State = state
			held = append(held, k)
			_ = ks.Add(k.secret())
		}
	}
	before := f.store.keys
	// Keys that come and go leave dead entries until the store compacts.
	for i := range 400 {
		k := newStoreKey(t, fmt.Sprintf("churn-%03d", i))
		_ = ks.Add(k.secret())
		_ = ks.Delete(k.secret())
	}
	if f.store.keys == before {
		t.Fatal("the store never compacted: the test proves nothing")
	}
	for _, k := range held {
		if msg := verifyKey(f.handler, k, states[k.rec.State]); msg != "" {
			t.Error(msg)
		}
	}
}

// Two hashed Secrets should never hold one digest: keyward mints each key
// once. If they do (a record copied or forged), the key is refused,
// whichever was written last, never answered for one of them; once only
// one holds it and that one is written again, it answers.
func TestStoreOneDigestInTwoSecrets(t *testing.T) {
	f := newFixture(t)
	ks := keyStore{f.store}
	older := newStoreKey(t, "older")
	_ = ks.Add(older.secret())
	if msg := verifyKey(f.handler, older, ReasonOK); msg != "" {
		t.Fatal(msg)
	}
	newer := *older
	newer.rec.APIKey, newer.rec.ExternalID = "newer", "ext-newer"
	_ = ks.Add(newer.secret())
	if msg := verifyKey(f.handler, &newer, ReasonRevoked); msg != "" {
		t.Fatalf("held by two Secrets: %s", msg)
	}
	_ = ks.Update(older.secret())
	if msg := verifyKey(f.handler, older, ReasonRevoked); msg != "" {
		t.Fatalf("held by two Secrets, the older written again: %s", msg)
	}
	// A rotation's previous key held elsewhere is refused the same way.
	rotated := newer.rotate(t, time.Now().Add(time.Hour))
	_ = ks.Update(rotated.secret())
	if msg := verifyKey(f.handler, older, ReasonRevoked); msg != "" {
		t.Fatalf("as a rotation's previous key, held by another Secret too: %s", msg)
	}
	if msg := verifyKey(f.handler, rotated, ReasonOK); msg != "" {
		t.Fatalf("the rotation's new key: %s", msg)
	}

	_ = ks.Delete(rotated.secret())
	_ = ks.Update(older.secret())
	if msg := verifyKey(f.handler, older, ReasonOK); msg != "" {
		t.Fatalf("held by one Secret again, written again: %s", msg)
	}
	_ = ks.Delete(older.secret())
	if msg := verifyKey(f.handler, older, ReasonUnknown); msg != "" {
		t.Fatal(msg)
	}
}

// After a relist (a watch that could not be resumed), keys keep when they
// were last used and reported, or every key in use would have its
// lastUsedTime written again at once.
func TestStoreRelistKeepsUsage(t *testing.T) {
	f := newFixture(t)
	ks := keyStore{f.store}
	k := newStoreKey(t, "used")
	_ = ks.Add(k.secret())
	e, _ := f.store.lookup(k.rec.Digest, "iot", "devices")
	e.lastUsed.Store(42)
	e.reported.Store(41)
	_ = ks.Replace([]any{k.secret()}, "")
	e, _ = f.store.lookup(k.rec.Digest, "iot", "devices")
	if e.lastUsed.Load() != 42 || e.reported.Load() != 41 {
		t.Errorf("after a relist: last used %d, reported %d; want 42, 41", e.lastUsed.Load(), e.reported.Load())
	}
}

// rotate makes k's record that of a rotation: a new current key, k's own
// kept as the previous one until ends. It returns the successor.
func (k *storeKey) rotate(t testing.TB, ends time.Time) *storeKey {
	t.Helper()
	next, err := keys.Generate("st")
	if err != nil {
		t.Fatal(err)
	}
	n := &storeKey{plaintext: next.Plaintext(), rec: k.rec}
	n.rec.Digest, n.rec.KeyID = next.Digest(), next.ID()
	n.rec.Previous = &record.Previous{Digest: k.rec.Digest, KeyID: k.rec.KeyID, EndsAt: ends}
	return n
}

// During a rotation's overlap a hashed Secret holds two keys: both answer,
// each under its own key ID; the previous one ends with the overlap, or with
// the key if that comes first; disabling applies to both; the record
// leaving overlap, a relist, or the Secret's deletion drop the previous one.
func TestStoreRotation(t *testing.T) {
	f := newFixture(t)
	ks := keyStore{f.store}
	old := newStoreKey(t, "rotating")
	_ = ks.Add(old.secret())
	e, _ := f.store.lookup(old.rec.Digest, "iot", "devices")
	e.lastUsed.Store(42)

	ends := f.now.Add(time.Hour)
	cur := old.rotate(t, ends)
	_ = ks.Update(cur.secret())
	prevAsItIs := *old
	prevAsItIs.rec.Previous = nil
	for _, k := range []*storeKey{cur, &prevAsItIs} {
		if msg := verifyKey(f.handler, k, ReasonOK); msg != "" {
			t.Error("in overlap: " + msg)
		}
	}
	if e, _ := f.store.lookup(old.rec.Digest, "iot", "devices"); e.lastUsed.Load() != 42 || !e.previous {
		t.Errorf("the previous key's entry: last used %d (want 42, its own), previous %v", e.lastUsed.Load(), e.previous)
	}
	if e, _ := f.store.lookup(cur.rec.Digest, "iot", "devices"); e.lastUsed.Load() != 0 || e.previous {
		t.Errorf("the new key's entry: last used %d (want 0: not the old key's), previous %v", e.lastUsed.Load(), e.previous)
	}

	// The overlap ends: the previous key is expired, the current one works.
	f.now = ends
	if msg := verifyKey(f.handler, &prevAsItIs, ReasonExpired); msg != "" {
		t.Error("after the overlap: " + msg)
	}
	if msg := verifyKey(f.handler, cur, ReasonOK); msg != "" {
		t.Error("after the overlap: " + msg)
	}
	f.now = ends.Add(-time.Minute)

	// The key's own end comes before the overlap's: it ends both.
	early := *cur
	early.rec.ExpiresAt = f.now.Add(-time.Second).Truncate(time.Second)
	_ = ks.Update(early.secret())
	for _, k := range []*storeKey{cur, &prevAsItIs} {
		if msg := verifyKey(f.handler, k, ReasonExpired); msg != "" {
			t.Error("key expired before the overlap's end: " + msg)
		}
	}

	// Disabled applies to both generations.
	disabled := *cur
	disabled.rec.State = record.StateDisabled
	_ = ks.Update(disabled.secret())
	for _, k := range []*storeKey{cur, &prevAsItIs} {
		if msg := verifyKey(f.handler, k, ReasonDisabled); msg != "" {
			t.Error("disabled in overlap: " + msg)
		}
	}

	// The record leaves overlap: the previous key is unknown.
	done := *cur
	done.rec.Previous = nil
	_ = ks.Update(done.secret())
	if msg := verifyKey(f.handler, &prevAsItIs, ReasonUnknown); msg != "" {
		t.Error("record out of overlap: " + msg)
	}

	// A relist and a deletion drop both.
	_ = ks.Replace([]any{cur.secret()}, "")
	if msg := verifyKey(f.handler, &prevAsItIs, ReasonOK); msg != "" {
		t.Error("relisted in overlap: " + msg)
	}
	_ = ks.Delete(cur.secret())
	for _, k := range []*storeKey{cur, &prevAsItIs} {
		if msg := verifyKey(f.handler, k, ReasonUnknown); msg != "" {
			t.Error("deleted: " + msg)
		}
	}
	if n := f.store.Len(); n != 0 {
		t.Errorf("%d keys held after the relist and the deletion, want 0", n)
	}
}
