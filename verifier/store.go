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
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unique"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/match"
	"github.com/keyward/keyward/internal/record"
)

// The store is laid out for the garbage collector as much as for lookups.
// The verifier holds every key, and the collector marks its heap while it
// answers requests, on the same cores. With an object for every string and
// slice of every key (1.1 million objects for 100,000 keys), a full
// collection took 80 ms of CPU; laid out as below, the keys add a few
// milliseconds to it and about 600 objects (BenchmarkGCWithKeys against
// BenchmarkGCFloor). So:
//
//   - entries live in fixed-size chunks, a few pointers each, and are never
//     moved or reused: a request may keep its *entry after the lock;
//   - what the keys of one application share (names, scopes, ranges and
//     the header values built from them) is one profile they point to;
//   - each key's own strings are cut from shared string arenas;
//   - the maps from digest and from Secret name hold positions, not
//     pointers, so the collector does not scan them at all.
//
// An update or delete leaves its old entry behind; once the dead outnumber
// the live, compact copies the live ones into fresh chunks and arenas.

// entry is one key.
type entry struct {
	digest  keys.Digest
	profile *profile
	names   string    // the key ID, then the APIKey's name; in an arena
	keyID   [1]string // X-Auth-Key's value: the start of names
	refusal Reason    // ReasonOK for an active key, else why its state refuses it
	// previous: the key a rotation replaced, working until expiresAt.
	previous bool
	// epoch is the relist that last brought the key (Store.beginRelist).
	epoch uint32
	// expiresAt is Unix seconds; 0: never.
	expiresAt int64

	// lastUsed and reported are Unix nanoseconds, for the usage reporter.
	lastUsed atomic.Int64
	reported atomic.Int64
	queued   atomic.Bool
}

func (e *entry) apiKey() string { return e.names[len(e.keyID[0]):] }

// profile is what the keys of one application with the same scopes and
// ranges have in common, header values included, so that an allowed
// request allocates nothing to set them.
type profile struct {
	key       profileKey
	namespace string
	group     string
	// groupUID is the UID of the KeyGroup the key was issued under; empty
	// in records of releases before keyward recorded it.
	groupUID    string
	scopes      []string
	sources     *match.SourceRanges // nil: the group's apply
	headerApp   []string
	headerNS    []string
	headerExtID []string
	headerScope []string
}

// profileKey identifies a profile.
type profileKey struct{ namespace, group, groupUID, application, externalID, scopes, sources string }

// group is a KeyGroup compiled for matching.
type group struct {
	uid      string
	scopes   map[string]*match.Scope
	sources  match.SourceRanges
	noSource bool
	realm    []string // WWW-Authenticate value
	stats    *groupStats
}

const (
	chunkSize = 1024     // entries per chunk
	arenaSize = 64 << 10 // bytes per string arena
)

// compactAfter is how many dead entries there must be, and outnumber the
// live ones, before compact runs. A variable for tests.
var compactAfter = 4096

// nameKey is a hashed Secret's name, by 128 bits of its SHA-256: names as
// keys would be pointers for the collector to follow.
type nameKey [16]byte

func nameKeyOf(name string) nameKey {
	sum := sha256.Sum256([]byte(name))
	return nameKey(sum[:16])
}

// previousNameKeyOf names the entry of the previous key a hashed Secret
// holds during a rotation's overlap. No Secret name holds a NUL.
func previousNameKeyOf(name string) nameKey { return nameKeyOf(name + "\x00previous") }

// keyTable is every key. Its maps and chunk list change only under
// Store.mu, and only writers (holding Store.wmu) change them; an entry never
// changes once indexed, but for its usage fields.
type keyTable struct {
	index  map[keys.Digest]uint32 // position of each live entry
	byName map[nameKey]uint32     // position of each hashed Secret's entry
	chunks []*[chunkSize]entry
	used   uint32 // positions handed out

	// Only writers touch these: the arena the entries' strings are cut
	// from, and the profiles the entries use.
	arena    strings.Builder
	profiles map[profileKey]*profile
}

func newKeyTable(capacity int) *keyTable {
	return &keyTable{
		index: make(map[keys.Digest]uint32, capacity), byName: make(map[nameKey]uint32, capacity),
		profiles: map[profileKey]*profile{},
	}
}

func (t *keyTable) at(pos uint32) *entry { return &t.chunks[pos/chunkSize][pos%chunkSize] }

// live reports whether the entry at pos is the one its digest finds.
func (t *keyTable) live(pos uint32) bool {
	p, ok := t.index[t.at(pos).digest]
	return ok && p == pos
}

// dead is how many entries updates and deletes have left behind.
func (t *keyTable) dead() int { return int(t.used) - len(t.index) }

// str returns a copy of s cut from the current arena. A strings.Builder
// never changes the bytes it has written, so the strings it has handed out
// stay valid as it grows or is replaced.
func (t *keyTable) str(s string) string {
	if len(s) > arenaSize/8 {
		return strings.Clone(s)
	}
	if t.arena.Cap()-t.arena.Len() < len(s) {
		t.arena = strings.Builder{}
		t.arena.Grow(arenaSize)
	}
	start := t.arena.Len()
	t.arena.WriteString(s)
	return t.arena.String()[start:]
}

// profileFor returns the profile of rec's application, scopes and ranges.
func (t *keyTable) profileFor(rec *record.Record) *profile {
	k := profileKey{namespace: rec.Namespace, group: rec.KeyGroup, groupUID: rec.KeyGroupUID, application: rec.Application, externalID: rec.ExternalID, scopes: strings.Join(rec.Scopes, ",")}
	if rec.SourceRanges != nil {
		parts := make([]string, len(rec.SourceRanges))
		for i, p := range rec.SourceRanges {
			parts[i] = p.String()
		}
		k.sources = "[" + strings.Join(parts, ",") + "]"
	}
	if p := t.profiles[k]; p != nil {
		return p
	}
	p := &profile{
		key:         k,
		namespace:   intern(k.namespace),
		group:       intern(k.group),
		groupUID:    intern(k.groupUID),
		headerApp:   []string{intern(k.application)},
		headerExtID: []string{intern(k.externalID)},
		headerScope: []string{intern(k.scopes)},
	}
	p.headerNS = []string{p.namespace}
	for _, sc := range rec.Scopes {
		p.scopes = append(p.scopes, intern(sc))
	}
	if rec.SourceRanges != nil {
		r := match.SourceRangesOf(rec.SourceRanges)
		p.sources = &r
	}
	t.profiles[k] = p
	return p
}

// Store is the verifier's memory: keys by digest and key groups by name. It
// is fed by reflectors (it implements their store interface through
// keyStore and groupStore) and read by every request.
type Store struct {
	// wmu serialises the writers of keys; mu guards what readers see.
	wmu    sync.Mutex
	mu     sync.RWMutex
	keys   *keyTable
	groups map[string]*group // "<namespace>/<name>"

	keysSynced, groupsSynced atomic.Bool
	metrics                  *metrics

	epoch uint32 // the current relist's; under wmu
}

// NewStore returns an empty store reporting to m (nil: no metrics).
func NewStore(m *metrics) *Store {
	if m == nil {
		m = newMetrics(nil)
	}
	return &Store{keys: newKeyTable(0), groups: map[string]*group{}, metrics: m}
}

// Synced reports whether both the keys and the key groups have been listed.
func (s *Store) Synced() bool { return s.keysSynced.Load() && s.groupsSynced.Load() }

// Len returns the number of keys held.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys.index)
}

// lookup returns the key with this digest and its group.
func (s *Store) lookup(d keys.Digest, namespace, name string) (*entry, *group) {
	var e *entry
	s.mu.RLock()
	if pos, ok := s.keys.index[d]; ok {
		e = s.keys.at(pos)
	}
	g := s.groups[groupKey(namespace, name)]
	s.mu.RUnlock()
	return e, g
}

// group returns the KeyGroup namespace/name, or nil.
func (s *Store) group(namespace, name string) *group {
	s.mu.RLock()
	g := s.groups[groupKey(namespace, name)]
	s.mu.RUnlock()
	return g
}

func groupKey(namespace, name string) string { return namespace + "/" + name }

func intern(s string) string { return unique.Make(s).Value() }

// refusalOf is the answer a key's state gives, expiry time aside.
func refusalOf(s record.State) Reason {
	switch s {
	case record.StateActive:
		return ReasonOK
	case record.StateExpired:
		return ReasonExpired
	case record.StateDisabled:
		return ReasonDisabled
	}
	// Revoked, and Rejected: a key that can never work again.
	return ReasonRevoked
}

// place returns t's next position and its empty entry, for the caller to
// fill: readers cannot reach it until the caller indexes it. Callers hold
// wmu.
func (s *Store) place(t *keyTable) (uint32, *entry) {
	pos := t.used
	if int(pos/chunkSize) == len(t.chunks) {
		chunk := new([chunkSize]entry)
		if t == s.keys { // readers see this table's chunk list
			s.mu.Lock()
			t.chunks = append(t.chunks, chunk)
			s.mu.Unlock()
		} else {
			t.chunks = append(t.chunks, chunk)
		}
	}
	t.used++
	return pos, t.at(pos)
}

// fill writes rec into e, an entry of t, with its strings cut from t's
// arena.
func (t *keyTable) fill(e *entry, rec *record.Record) {
	e.digest = rec.Digest
	e.names = t.str(rec.KeyID + rec.APIKey)
	e.keyID[0] = e.names[:len(rec.KeyID)]
	e.refusal = refusalOf(rec.State)
	if !rec.ExpiresAt.IsZero() {
		e.expiresAt = rec.ExpiresAt.Unix()
	}
	e.profile = t.profileFor(rec)
}

// fillPrevious writes into e the previous key of rec, a record in a
// rotation's overlap: the same key in all but its digest, its key ID and
// its end, which is the overlap's or the key's own, whichever comes first.
func (t *keyTable) fillPrevious(e *entry, rec *record.Record) {
	t.fill(e, rec)
	p := rec.Previous
	e.digest, e.previous = p.Digest, true
	e.names = t.str(p.KeyID + rec.APIKey)
	e.keyID[0] = e.names[:len(p.KeyID)]
	e.expiresAt = rec.PreviousEnd().Unix()
}

// refill writes src, an entry of another table, into e, an entry of t, as
// fill would have from src's record: its strings cut from t's arena, its
// profile t's, its usage kept. Every field fill writes is copied here.
func (t *keyTable) refill(e, src *entry) {
	e.digest, e.refusal, e.expiresAt, e.previous, e.epoch = src.digest, src.refusal, src.expiresAt, src.previous, src.epoch
	e.names = t.str(src.names)
	e.keyID[0] = e.names[:len(src.keyID[0])]
	e.profile = src.profile
	t.profiles[src.profile.key] = src.profile
	carryUsage(e, src)
}

// putKey adds or replaces the key held in secret, and the previous key it
// holds during a rotation's overlap. A Secret that does not decode is
// dropped, so a damaged record can never let a request through.
func (s *Store) putKey(obj any) {
	secret, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	rec, err := record.Decode(secret.Data)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	t, name, prevName := s.keys, nameKeyOf(secret.Name), previousNameKeyOf(secret.Name)
	if err != nil {
		s.metrics.badRecords.Inc()
		s.dropKey(secret.Name)
		return
	}
	pos, e := s.place(t)
	t.fill(e, rec)
	e.epoch = s.epoch
	var prevPos uint32
	var prev *entry
	if rec.Previous != nil {
		prevPos, prev = s.place(t)
		t.fillPrevious(prev, rec)
		prev.epoch = s.epoch
	}
	// Usage follows the digest: a key's last use is kept across updates
	// of its record, and a key that a rotation made the previous one
	// keeps its own.
	src, prevSrc := t.byDigest(e.digest), t.byDigest(prev.digestOrZero())
	// keyward mints every key once, so a digest that another hashed Secret
	// holds too means a record was copied or forged: neither is picked,
	// and the key is refused as revoked until only one record holds it and
	// that one is written again (or relisted). The other's name keeps a
	// dead entry, which its delete ignores.
	if t.heldElsewhere(e.digest, name, prevName) {
		e.refusal = ReasonRevoked
		s.metrics.badRecords.Inc()
	}
	if prev != nil && t.heldElsewhere(prev.digest, name, prevName) {
		prev.refusal = ReasonRevoked
		s.metrics.badRecords.Inc()
	}
	s.mu.Lock()
	t.unindex(name)
	t.unindex(prevName)
	t.index[e.digest], t.byName[name] = pos, pos
	if prev != nil {
		t.index[prev.digest], t.byName[prevName] = prevPos, prevPos
	}
	s.mu.Unlock()
	// Again, for the uses recorded in the old entries meanwhile.
	carryUsage(e, src)
	if prev != nil {
		carryUsage(prev, prevSrc)
	}
	s.compactIfSparse()
}

// heldElsewhere reports whether the live entry of d belongs to a hashed
// Secret other than the one whose entries are named name and prevName.
// Only writers call it.
func (t *keyTable) heldElsewhere(d keys.Digest, name, prevName nameKey) bool {
	p, ok := t.index[d]
	if !ok {
		return false
	}
	own, ok1 := t.byName[name]
	ownPrev, ok2 := t.byName[prevName]
	return (!ok1 || own != p) && (!ok2 || ownPrev != p)
}

// byDigest returns the live entry holding d, with its usage carried into
// a new one, or nil. A zero digest finds nothing.
func (t *keyTable) byDigest(d keys.Digest) *entry {
	if d == (keys.Digest{}) {
		return nil
	}
	if p, ok := t.index[d]; ok {
		return t.at(p)
	}
	return nil
}

func (e *entry) digestOrZero() keys.Digest {
	if e == nil {
		return keys.Digest{}
	}
	return e.digest
}

// unindex forgets the entry named name. Callers hold wmu and mu.
func (t *keyTable) unindex(name nameKey) {
	pos, ok := t.byName[name]
	if !ok {
		return
	}
	delete(t.byName, name)
	if t.live(pos) {
		delete(t.index, t.at(pos).digest)
	}
}

func (s *Store) deleteKey(obj any) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.dropKey(objectName(obj))
}

// dropKey forgets the keys of the hashed Secret with this name. Callers
// hold wmu.
func (s *Store) dropKey(secret string) {
	s.mu.Lock()
	s.keys.unindex(nameKeyOf(secret))
	s.keys.unindex(previousNameKeyOf(secret))
	s.mu.Unlock()
	s.compactIfSparse()
}

// compactIfSparse copies the live entries into a fresh table once the dead
// outnumber them, so that memory follows the keys held, not the keys ever
// seen. Readers keep answering from the old table meanwhile; entries they
// hold stay valid, as the old chunks are only dropped, never reused.
// Callers hold wmu.
func (s *Store) compactIfSparse() {
	old := s.keys
	if dead := old.dead(); dead < compactAfter || dead <= len(old.index) {
		return
	}
	t := newKeyTable(len(old.index))
	moved := make(map[uint32]uint32, len(old.index)) // old position → new
	for d, p := range old.index {
		src := old.at(p)
		np, e := s.place(t)
		t.refill(e, src)
		t.index[d], moved[p] = np, np
	}
	for n, p := range old.byName {
		if np, ok := moved[p]; ok {
			t.byName[n] = np
		}
	}
	s.mu.Lock()
	s.keys = t
	s.mu.Unlock()
	// Uses recorded in the old entries while copying are kept.
	for p, np := range moved {
		carryUsage(t.at(np), old.at(p))
	}
}

// carryUsage keeps, in e, the later last use of e and prev (none when
// prev is nil). What was reported is carried only within a generation: a
// key that a rotation made the previous one reports its use to another
// status field, from its next use on.
func carryUsage(e, prev *entry) {
	if prev == nil {
		return
	}
	if u := prev.lastUsed.Load(); u > e.lastUsed.Load() {
		e.lastUsed.Store(u)
	}
	if prev.previous != e.previous {
		return
	}
	if r := prev.reported.Load(); r > e.reported.Load() {
		e.reported.Store(r)
	}
}

// beginRelist starts a relist: the keys put from now on belong to it, and
// endRelist forgets the others. It returns the relist's epoch.
func (s *Store) beginRelist() uint32 {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.epoch++
	return s.epoch
}

// endRelist forgets the keys that the relist of epoch did not bring (deleted
// while no watch saw it), and marks the keys synced. Keys it brought keep
// their usage bookkeeping: putKey carries it by digest.
func (s *Store) endRelist(epoch uint32) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	t := s.keys
	var stale []nameKey
	for n, p := range t.byName {
		if t.at(p).epoch != epoch {
			stale = append(stale, n)
		}
	}
	if len(stale) > 0 {
		s.mu.Lock()
		for _, n := range stale {
			t.unindex(n)
		}
		s.mu.Unlock()
	}
	s.compactIfSparse()
	s.keysSynced.Store(true)
}

// compileGroup turns a KeyGroup into a group. Rules that fail to compile are
// left out, which can only deny requests, never allow them.
func (s *Store) compileGroup(g *keywardv1alpha1.KeyGroup) *group {
	out := &group{
		uid:    intern(string(g.UID)),
		scopes: make(map[string]*match.Scope, len(g.Spec.Scopes)),
		realm:  []string{fmt.Sprintf("Bearer realm=%q", g.Namespace+"/"+g.Name)},
		stats:  s.metrics.forGroup(g.Namespace, g.Name),
	}
	for _, sc := range g.Spec.Scopes {
		scope := &match.Scope{Name: intern(string(sc.Name))}
		for _, rule := range sc.Rules {
			paths := make([]string, len(rule.Paths))
			for i, p := range rule.Paths {
				paths[i] = string(p)
			}
			methods := make([]string, len(rule.Methods))
			for i, m := range rule.Methods {
				methods[i] = string(m)
			}
			if r, err := match.CompileRule(paths, methods); err == nil {
				scope.Rules = append(scope.Rules, r)
			}
		}
		out.scopes[scope.Name] = scope
	}
	cidrs := make([]string, len(g.Spec.AllowedSourceRanges))
	for i, c := range g.Spec.AllowedSourceRanges {
		cidrs[i] = string(c)
	}
	r, err := match.ParseSourceRanges(cidrs)
	out.sources = r
	// The schema admits only CIDRs; should one still not parse, the group
	// allows no source rather than every source.
	out.noSource = err != nil
	return out
}

func (s *Store) putGroup(obj any) {
	g, ok := obj.(*keywardv1alpha1.KeyGroup)
	if !ok {
		return
	}
	compiled := s.compileGroup(g)
	s.mu.Lock()
	s.groups[groupKey(g.Namespace, g.Name)] = compiled
	s.mu.Unlock()
}

func (s *Store) deleteGroup(obj any) {
	ns, name := objectNamespace(obj), objectName(obj)
	s.mu.Lock()
	delete(s.groups, groupKey(ns, name))
	s.mu.Unlock()
	s.metrics.dropGroup(ns, name)
}

func (s *Store) replaceGroups(list []any) {
	fresh := make(map[string]*group, len(list))
	for _, obj := range list {
		if g, ok := obj.(*keywardv1alpha1.KeyGroup); ok {
			fresh[groupKey(g.Namespace, g.Name)] = s.compileGroup(g)
		}
	}
	s.mu.Lock()
	old := s.groups
	s.groups = fresh
	s.mu.Unlock()
	// Groups deleted while no watch saw it.
	for k := range old {
		if _, ok := fresh[k]; !ok {
			ns, name, _ := strings.Cut(k, "/")
			s.metrics.dropGroup(ns, name)
		}
	}
	s.groupsSynced.Store(true)
}

func objectName(obj any) string {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if o, ok := obj.(interface{ GetName() string }); ok {
		return o.GetName()
	}
	return ""
}

func objectNamespace(obj any) string {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if o, ok := obj.(interface{ GetNamespace() string }); ok {
		return o.GetNamespace()
	}
	return ""
}

// keyStore and groupStore adapt the Store to the reflector's store
// interface, for tests that feed it as a reflector would (the verifier
// feeds its keys through keyFeed, its KeyGroups through a reflector).
type keyStore struct{ *Store }

func (k keyStore) Add(obj any) error    { k.putKey(obj); return nil }
func (k keyStore) Update(obj any) error { k.putKey(obj); return nil }
func (k keyStore) Delete(obj any) error { k.deleteKey(obj); return nil }
func (k keyStore) Replace(list []any, _ string) error {
	epoch := k.beginRelist()
	for _, obj := range list {
		k.putKey(obj)
	}
	k.endRelist(epoch)
	return nil
}
func (k keyStore) Resync() error { return nil }

type groupStore struct{ *Store }

func (g groupStore) Add(obj any) error                  { g.putGroup(obj); return nil }
func (g groupStore) Update(obj any) error               { g.putGroup(obj); return nil }
func (g groupStore) Delete(obj any) error               { g.deleteGroup(obj); return nil }
func (g groupStore) Replace(list []any, _ string) error { g.replaceGroups(list); return nil }
func (g groupStore) Resync() error                      { return nil }

var (
	_ cache.ReflectorStore = keyStore{}
	_ cache.ReflectorStore = groupStore{}
)
