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
	"fmt"
	"sync"
	"time"

	"github.com/google/btree"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/internal/rules"
)

// Book keeps, for each Application, the APIKeys of it that the manager's
// cache holds and the state of each of their hashed Secrets, fed by the
// cache's informers. A decision about one key reads its siblings here in
// place: listing them out of the cache copies every one of them, and an
// Application with many keys made each decision cost as much as its keys.
// Beside them it keeps what a limit decision asks of them, kept up to date
// as they change: how many hashed Secrets occupy a slot, and the few keys
// that could make that count or the queue of keys waiting differ (those
// not minted yet, by age; those minted that have stopped or may stop
// counting), so that a decision looks at those few, not at every key.
//
// The book follows the cache a moment behind it. It is synced once its
// handlers have taken in what the informers listed first (in no order);
// from then on they deliver each informer's events in order, so once it
// holds an APIKey, it holds every APIKey of that namespace created before
// it (WaitForKey). Until it is synced it may lack any key or hashed
// Secret: whoever counts from it waits for that first (WaitForSynced).
type Book struct {
	// namespace is the operator's: hashed Secrets anywhere else are not
	// keyward's, whatever their labels say.
	namespace string
	mu        sync.RWMutex
	apps      map[string]*appBook
	// added is closed, and replaced, whenever a key is added.
	added chan struct{}
	// regs are the book's handlers on the informers (Register): the book
	// is synced once each has taken in what its informer listed first.
	regs []interface{ HasSynced() bool }
}

// appBook is what the book holds of one Application.
type appBook struct {
	keys   map[types.UID]*keywardv1alpha1.APIKey
	hashed map[types.UID]record.State
	// activeOrDisabled counts the keys whose status says Active or
	// Disabled.
	activeOrDisabled int
	// occupying counts the hashed Secrets whose state occupies a slot.
	occupying int
	// unminted holds the keys with no hashed Secret that may still be
	// issued: not in a terminal phase, not revoked, not being deleted. By
	// age, as rules.KeyCreatedBefore orders keys.
	unminted   *btree.BTreeG[*keywardv1alpha1.APIKey]
	inUnminted map[types.UID]*keywardv1alpha1.APIKey
	// stopping holds the minted keys that occupy a slot by their hashed
	// Secret while their spec says they stopped (revoked, being deleted).
	stopping map[types.UID]*keywardv1alpha1.APIKey
	// expiring holds the other minted keys that occupy a slot and have an
	// expiry, soonest first.
	expiring   *btree.BTreeG[*keywardv1alpha1.APIKey]
	inExpiring map[types.UID]*keywardv1alpha1.APIKey
}

// Siblings is what the book holds of one Application. Its maps and the
// objects in them are the book's and the cache's: read them only inside
// Read, and never change them.
type Siblings struct {
	// Keys are the Application's APIKeys, by UID.
	Keys map[types.UID]*keywardv1alpha1.APIKey
	// Hashed is the state of each minted key's hashed Secret, by the
	// key's UID, whether the book holds the APIKey or not.
	Hashed map[types.UID]record.State
	// ActiveOrDisabled is how many of Keys are Active or Disabled, by
	// their status.
	ActiveOrDisabled int
	// Occupying is how many of Hashed occupy a slot (record.State.Occupying).
	Occupying int
	// Stopping are the keys of Hashed that occupy a slot while their spec
	// says they have stopped: revoked, or being deleted.
	Stopping map[types.UID]*keywardv1alpha1.APIKey

	app *appBook
}

// AscendUnminted calls f, oldest first (rules.KeyCreatedBefore), with each
// key that has no hashed Secret and may still be issued: not in a terminal
// phase, not revoked, not being deleted. It stops when f returns false.
func (s Siblings) AscendUnminted(f func(*keywardv1alpha1.APIKey) bool) {
	if s.app != nil {
		s.app.unminted.Ascend(f)
	}
}

// AscendExpiring calls f, soonest expiry first, with each key of Hashed
// that occupies a slot, has an expiry and is not in Stopping. It stops
// when f returns false.
func (s Siblings) AscendExpiring(f func(*keywardv1alpha1.APIKey) bool) {
	if s.app != nil {
		s.app.expiring.Ascend(f)
	}
}

// NewBook returns an empty book that takes hashed Secrets from the
// operator's namespace only; Register feeds it. With namespace "", it
// takes none, and holds keys only.
func NewBook(namespace string) *Book {
	return &Book{namespace: namespace, apps: map[string]*appBook{}, added: make(chan struct{})}
}

// olderKey orders keys as rules.KeyCreatedBefore does, then by UID.
func olderKey(a, b *keywardv1alpha1.APIKey) bool {
	if rules.KeyCreatedBefore(a, b) {
		return true
	}
	return !rules.KeyCreatedBefore(b, a) && a.UID < b.UID
}

// expiresSooner orders keys by spec.expiresAt, then by UID.
func expiresSooner(a, b *keywardv1alpha1.APIKey) bool {
	if ea, eb := a.Spec.ExpiresAt.Time, b.Spec.ExpiresAt.Time; !ea.Equal(eb) {
		return ea.Before(eb)
	}
	return a.UID < b.UID
}

func newAppBook() *appBook {
	return &appBook{
		keys:       map[types.UID]*keywardv1alpha1.APIKey{},
		hashed:     map[types.UID]record.State{},
		unminted:   btree.NewG(16, olderKey),
		inUnminted: map[types.UID]*keywardv1alpha1.APIKey{},
		stopping:   map[types.UID]*keywardv1alpha1.APIKey{},
		expiring:   btree.NewG(16, expiresSooner),
		inExpiring: map[types.UID]*keywardv1alpha1.APIKey{},
	}
}

// refresh puts the key with that UID in the sets it belongs to now, and
// takes it out of the others.
func (a *appBook) refresh(uid types.UID) {
	if k, ok := a.inUnminted[uid]; ok {
		a.unminted.Delete(k)
		delete(a.inUnminted, uid)
	}
	if k, ok := a.inExpiring[uid]; ok {
		a.expiring.Delete(k)
		delete(a.inExpiring, uid)
	}
	delete(a.stopping, uid)
	k, ok := a.keys[uid]
	if !ok {
		return
	}
	stopped := k.Spec.Revoked || !k.DeletionTimestamp.IsZero()
	st, minted := a.hashed[uid]
	switch {
	case !minted:
		if !stopped && !k.Status.Phase.Terminal() {
			a.unminted.ReplaceOrInsert(k)
			a.inUnminted[uid] = k
		}
	case !st.Occupying():
	case stopped:
		a.stopping[uid] = k
	case k.Spec.ExpiresAt != nil:
		a.expiring.ReplaceOrInsert(k)
		a.inExpiring[uid] = k
	}
}

func (a *appBook) empty() bool { return len(a.keys) == 0 && len(a.hashed) == 0 }

// SyncWait is how long a count waits for a manager just started to have
// its book (WaitForSynced, WaitForKey).
const SyncWait = 10 * time.Second

// RegisterBook returns a book fed by c's informers (NewBook, Register).
func RegisterBook(ctx context.Context, c cache.Cache, namespace string) (*Book, error) {
	b := NewBook(namespace)
	return b, b.Register(ctx, c)
}

// ApplicationKey is how the book, and the controller's locks and
// reservations, name an Application: <namespace>/<name>.
func ApplicationKey(namespace, name string) string { return namespace + "/" + name }

// Register feeds the book from c's APIKey and Secret informers. Call it
// before c starts, or after: an informer replays what it holds to a new
// handler.
func (b *Book) Register(ctx context.Context, c cache.Cache) error {
	for _, obj := range []client.Object{&keywardv1alpha1.APIKey{}, &corev1.Secret{}} {
		inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("the book's informer for %T: %w", obj, err)
		}
		reg, err := inf.AddEventHandler(b)
		if err != nil {
			return fmt.Errorf("the book's handler for %T: %w", obj, err)
		}
		b.mu.Lock()
		b.regs = append(b.regs, reg)
		b.mu.Unlock()
	}
	return nil
}

// Synced reports whether the book holds everything its informers listed
// first. A book fed by hand (no Register) is always synced.
func (b *Book) Synced() bool {
	b.mu.RLock()
	regs := b.regs
	b.mu.RUnlock()
	for _, r := range regs {
		if !r.HasSynced() {
			return false
		}
	}
	return true
}

// syncPoll is how often WaitForSynced looks; only a manager starting
// waits at all.
const syncPoll = 20 * time.Millisecond

// WaitForSynced waits until the book is synced, for at most timeout: a
// count from a book that has not taken in the informers' first lists could
// be too low, and let a key past its limit.
func (b *Book) WaitForSynced(ctx context.Context, timeout time.Duration) error {
	if b.Synced() {
		return nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	tick := time.NewTicker(syncPoll)
	defer tick.Stop()
	for !b.Synced() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("the manager's book of APIKeys and hashed Secrets has not taken in its informers' first lists after %s", timeout)
		}
	}
	return nil
}

var _ toolscache.ResourceEventHandler = &Book{}

// OnAdd puts an APIKey or a hashed Secret in the book.
func (b *Book) OnAdd(obj any, _ bool) { b.update(nil, obj) }

// OnUpdate replaces old with obj in one step, so that no reader sees the
// object gone between its two versions.
func (b *Book) OnUpdate(old, obj any) { b.update(old, obj) }

// OnDelete takes an APIKey or a hashed Secret out of the book, also when
// the informer only has its last known state.
func (b *Book) OnDelete(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	b.update(obj, nil)
}

// update takes old out of the book and puts obj in, under one lock; either
// may be nil. Objects other than APIKeys and hashed Secrets are ignored.
func (b *Book) update(old, obj any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch old.(type) {
	case *keywardv1alpha1.APIKey:
		b.deleteKey(old)
	case *corev1.Secret:
		b.deleteHashed(old)
	}
	switch obj.(type) {
	case *keywardv1alpha1.APIKey:
		b.putKey(obj)
	case *corev1.Secret:
		b.putHashed(obj)
	}
}

// Read calls f with what the book holds of the Application, under its
// read lock: f must be quick and must not call the book.
func (b *Book) Read(namespace, name string, f func(Siblings)) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	a := b.apps[ApplicationKey(namespace, name)]
	if a == nil {
		f(Siblings{})
		return
	}
	f(Siblings{Keys: a.keys, Hashed: a.hashed, ActiveOrDisabled: a.activeOrDisabled, Occupying: a.occupying, Stopping: a.stopping, app: a})
}

// WaitForKey waits until the book is synced and holds the APIKey of the
// Application with that UID, for at most timeout in all. A key read from
// the cache is in the book a moment later; then so is every key created
// before it.
func (b *Book) WaitForKey(ctx context.Context, namespace, app string, uid types.UID, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	if err := b.WaitForSynced(ctx, timeout); err != nil {
		return err
	}
	for {
		b.mu.RLock()
		var ok bool
		if a := b.apps[ApplicationKey(namespace, app)]; a != nil {
			_, ok = a.keys[uid]
		}
		added := b.added
		b.mu.RUnlock()
		if ok {
			return nil
		}
		select {
		case <-added:
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("the manager's cache has not shown the APIKey with uid %s of Application %s/%s to its book after %s", uid, namespace, app, timeout)
		}
	}
}

// putKey, deleteKey, putHashed and deleteHashed run under b.mu (update).

// app returns the book of an Application, made if need be.
func (b *Book) app(name string) *appBook {
	a := b.apps[name]
	if a == nil {
		a = newAppBook()
		b.apps[name] = a
	}
	return a
}

// tidy drops the book of an Application that holds nothing.
func (b *Book) tidy(name string) {
	if a := b.apps[name]; a != nil && a.empty() {
		delete(b.apps, name)
	}
}

func (b *Book) putKey(obj any) {
	k, ok := obj.(*keywardv1alpha1.APIKey)
	if !ok {
		return
	}
	a := b.app(ApplicationKey(k.Namespace, string(k.Spec.Application)))
	if old, ok := a.keys[k.UID]; ok && activeOrDisabled(old) {
		a.activeOrDisabled--
	}
	if activeOrDisabled(k) {
		a.activeOrDisabled++
	}
	a.keys[k.UID] = k
	a.refresh(k.UID)
	close(b.added)
	b.added = make(chan struct{})
}

func (b *Book) deleteKey(obj any) {
	k, ok := obj.(*keywardv1alpha1.APIKey)
	if !ok {
		return
	}
	name := ApplicationKey(k.Namespace, string(k.Spec.Application))
	a := b.apps[name]
	if a == nil {
		return
	}
	if old, ok := a.keys[k.UID]; ok {
		if activeOrDisabled(old) {
			a.activeOrDisabled--
		}
		delete(a.keys, k.UID)
	}
	a.refresh(k.UID)
	b.tidy(name)
}

func activeOrDisabled(k *keywardv1alpha1.APIKey) bool {
	return k.Status.Phase == keywardv1alpha1.APIKeyActive || k.Status.Phase == keywardv1alpha1.APIKeyDisabled
}

// hashedOf is the Application and key UID of a hashed Secret in the
// operator's namespace, from its labels.
func (b *Book) hashedOf(obj any) (app string, uid types.UID, state record.State, ok bool) {
	s, isSecret := obj.(*corev1.Secret)
	if !isSecret || b.namespace == "" || s.Namespace != b.namespace {
		return "", "", "", false
	}
	l := s.Labels
	// One Secret per key, named after it: another one carrying the same
	// key's labels would overwrite its state, and take it away when
	// deleted.
	if !record.IsHashed(l) || l[record.LabelAPIKeyUID] == "" || s.Name != record.SecretName(l[record.LabelAPIKeyUID]) {
		return "", "", "", false
	}
	return ApplicationKey(l[record.LabelNamespace], l[record.LabelApplication]), types.UID(l[record.LabelAPIKeyUID]), record.State(l[record.LabelState]), true
}

func (b *Book) putHashed(obj any) {
	name, uid, state, ok := b.hashedOf(obj)
	if !ok {
		return
	}
	a := b.app(name)
	if old, ok := a.hashed[uid]; ok && old.Occupying() {
		a.occupying--
	}
	a.hashed[uid] = state
	if state.Occupying() {
		a.occupying++
	}
	a.refresh(uid)
}

func (b *Book) deleteHashed(obj any) {
	name, uid, _, ok := b.hashedOf(obj)
	if !ok {
		return
	}
	a := b.apps[name]
	if a == nil {
		return
	}
	if old, ok := a.hashed[uid]; ok {
		if old.Occupying() {
			a.occupying--
		}
		delete(a.hashed, uid)
	}
	a.refresh(uid)
	b.tidy(name)
}
