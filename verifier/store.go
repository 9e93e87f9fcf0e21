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
	"strings"
	"sync"
	"sync/atomic"
	"unique"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/verifier/match"
)

// entry is the compact record of one key: what a request needs and nothing
// else. Strings shared by many keys (namespace, group, application, scope
// names) are interned. The response header values are built once here so
// an allowed request allocates nothing to set them.
type entry struct {
	secret      string // the hashed Secret's name, to find the entry on delete
	namespace   string
	group       string
	apiKey      string
	state       record.State
	expiresAt   int64 // Unix seconds; 0: never
	scopes      []string
	sources     *match.SourceRanges // nil: the group's apply
	headerKeyID []string
	headerApp   []string
	headerNS    []string
	headerExtID []string
	headerScope []string

	// lastUsed and reported are Unix nanoseconds, for the usage reporter.
	lastUsed atomic.Int64
	reported atomic.Int64
	queued   atomic.Bool
}

// group is a KeyGroup compiled for matching.
type group struct {
	scopes   map[string]*match.Scope
	sources  match.SourceRanges
	noSource bool
	realm    []string // WWW-Authenticate value
	stats    *groupStats
}

// Store is the verifier's memory: keys by digest and key groups by name. It
// is fed by reflectors (it implements their store interface through
// keyStore and groupStore) and read by every request.
type Store struct {
	mu     sync.RWMutex
	keys   map[keys.Digest]*entry
	byName map[string]keys.Digest
	groups map[string]*group // "<namespace>/<name>"

	keysSynced, groupsSynced atomic.Bool
	metrics                  *metrics
}

// NewStore returns an empty store reporting to m (nil: no metrics).
func NewStore(m *metrics) *Store {
	if m == nil {
		m = newMetrics(nil)
	}
	return &Store{keys: map[keys.Digest]*entry{}, byName: map[string]keys.Digest{}, groups: map[string]*group{}, metrics: m}
}

// Synced reports whether both the keys and the key groups have been listed.
func (s *Store) Synced() bool { return s.keysSynced.Load() && s.groupsSynced.Load() }

// Len returns the number of keys held.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys)
}

// lookup returns the key with this digest and its group.
func (s *Store) lookup(d keys.Digest, namespace, name string) (*entry, *group) {
	s.mu.RLock()
	e := s.keys[d]
	g := s.groups[groupKey(namespace, name)]
	s.mu.RUnlock()
	return e, g
}

func groupKey(namespace, name string) string { return namespace + "/" + name }

func intern(s string) string { return unique.Make(s).Value() }

// newEntry compacts a hashed Secret into an entry, or explains why it cannot.
func newEntry(secret *corev1.Secret) (keys.Digest, *entry, error) {
	rec, err := record.Decode(secret.Data)
	if err != nil {
		return keys.Digest{}, nil, fmt.Errorf("hashed Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	e := &entry{
		secret:      secret.Name,
		namespace:   intern(rec.Namespace),
		group:       intern(rec.KeyGroup),
		apiKey:      rec.APIKey,
		state:       rec.State,
		headerKeyID: []string{rec.KeyID},
		headerApp:   []string{intern(rec.Application)},
		headerScope: []string{intern(strings.Join(rec.Scopes, ","))},
	}
	e.headerNS = []string{e.namespace}
	e.headerExtID = []string{intern(rec.ExternalID)}
	for _, sc := range rec.Scopes {
		e.scopes = append(e.scopes, intern(sc))
	}
	if !rec.ExpiresAt.IsZero() {
		e.expiresAt = rec.ExpiresAt.Unix()
	}
	if rec.SourceRanges != nil {
		r := match.SourceRangesOf(rec.SourceRanges)
		e.sources = &r
	}
	return rec.Digest, e, nil
}

// putKey adds or replaces the key held in secret. A Secret that does not
// decode is dropped, so a damaged record can never let a request through.
func (s *Store) putKey(obj any) {
	secret, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	d, e, err := newEntry(secret)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byName[secret.Name]; ok {
		if prev := s.keys[old]; prev != nil && err == nil {
			// Keep the usage bookkeeping across updates of the record.
			e.lastUsed.Store(prev.lastUsed.Load())
			e.reported.Store(prev.reported.Load())
		}
		delete(s.keys, old)
		delete(s.byName, secret.Name)
	}
	if err != nil {
		s.metrics.badRecords.Inc()
		return
	}
	s.keys[d] = e
	s.byName[secret.Name] = d
}

func (s *Store) deleteKey(obj any) {
	name := objectName(obj)
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.byName[name]; ok {
		delete(s.keys, d)
		delete(s.byName, name)
	}
}

func (s *Store) replaceKeys(list []any) {
	fresh := &Store{keys: make(map[keys.Digest]*entry, len(list)), byName: make(map[string]keys.Digest, len(list)), metrics: s.metrics}
	s.mu.RLock()
	old := s.keys
	s.mu.RUnlock()
	for _, obj := range list {
		fresh.putKey(obj)
	}
	for d, e := range fresh.keys {
		if prev := old[d]; prev != nil {
			e.lastUsed.Store(prev.lastUsed.Load())
			e.reported.Store(prev.reported.Load())
		}
	}
	s.mu.Lock()
	s.keys, s.byName = fresh.keys, fresh.byName
	s.mu.Unlock()
	s.keysSynced.Store(true)
}

// compileGroup turns a KeyGroup into a group. Rules that fail to compile are
// left out, which can only deny requests, never allow them.
func (s *Store) compileGroup(g *keywardv1alpha1.KeyGroup) *group {
	out := &group{
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
}

func (s *Store) replaceGroups(list []any) {
	fresh := make(map[string]*group, len(list))
	for _, obj := range list {
		if g, ok := obj.(*keywardv1alpha1.KeyGroup); ok {
			fresh[groupKey(g.Namespace, g.Name)] = s.compileGroup(g)
		}
	}
	s.mu.Lock()
	s.groups = fresh
	s.mu.Unlock()
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
// interface: the reflector writes straight into the compact maps, so no
// informer cache holds a second copy of every Secret.
type keyStore struct{ *Store }

func (k keyStore) Add(obj any) error                  { k.putKey(obj); return nil }
func (k keyStore) Update(obj any) error               { k.putKey(obj); return nil }
func (k keyStore) Delete(obj any) error               { k.deleteKey(obj); return nil }
func (k keyStore) Replace(list []any, _ string) error { k.replaceKeys(list); return nil }
func (k keyStore) Resync() error                      { return nil }

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
