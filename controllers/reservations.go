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
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// reservations are the keys this manager is minting, or has minted, whose
// hashed Secret its cache has not shown yet, by application. A key is
// reserved under its application's lock before minting starts, so the
// mint itself (two API writes) runs outside the lock while every later
// decision still counts it.
type reservations struct {
	mu    sync.Mutex
	byApp map[string]map[types.UID]struct{}
}

func newReservations() *reservations {
	return &reservations{byApp: map[string]map[types.UID]struct{}{}}
}

func (r *reservations) add(app string, uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.byApp[app]
	if m == nil {
		m = map[types.UID]struct{}{}
		r.byApp[app] = m
	}
	m[uid] = struct{}{}
}

func (r *reservations) remove(app string, uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byApp[app], uid)
	if len(r.byApp[app]) == 0 {
		delete(r.byApp, app)
	}
}

// unseen returns the application's reservations that seen does not hold.
// With forget, it drops those seen does hold: seen is the cache, and every
// later decision reads the cache.
func (r *reservations) unseen(app string, seen func(types.UID) bool, forget bool) map[types.UID]struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[types.UID]struct{}{}
	for uid := range r.byApp[app] {
		if seen(uid) {
			if forget {
				delete(r.byApp[app], uid)
			}
			continue
		}
		out[uid] = struct{}{}
	}
	if len(r.byApp[app]) == 0 {
		delete(r.byApp, app)
	}
	return out
}
