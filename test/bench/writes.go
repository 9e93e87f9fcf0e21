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

package main

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward/keyward/test/testenv"
)

// writeCounter counts the API writes a manager's client makes, by verb and
// kind, through testenv.ObservingClient.
type writeCounter struct {
	n    atomic.Int64
	last atomic.Int64 // Unix nanoseconds of the latest write
	mu   sync.Mutex
	by   map[string]int64
	// reviews are creates of review objects (SubjectAccessReview, ...):
	// questions to the API server that store nothing, counted apart.
	reviews map[string]int64
}

func newWriteCounter() *writeCounter {
	return &writeCounter{by: map[string]int64{}, reviews: map[string]int64{}}
}

func (w *writeCounter) add(verb string, obj any) {
	kind := fmt.Sprintf("%T", obj)
	kind = kind[strings.LastIndexByte(kind, '.')+1:]
	kind = strings.TrimSuffix(kind, "ApplyConfiguration")
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.HasSuffix(kind, "Review") {
		w.reviews[verb+" "+kind]++
		return
	}
	w.n.Add(1)
	w.last.Store(time.Now().UnixNano())
	w.by[verb+" "+kind]++
}

// reset zeroes the counts.
func (w *writeCounter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n.Store(0)
	w.by, w.reviews = map[string]int64{}, map[string]int64{}
}

// breakdown lists the counts, largest first, with their share per unit.
func (w *writeCounter) breakdown(per int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.by))
	for k := range w.by {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := w.by[b] - w.by[a]; d != 0 {
			return int(d)
		}
		return strings.Compare(a, b)
	})
	out := make([]string, 0, len(names))
	for _, k := range names {
		out = append(out, fmt.Sprintf("`%s` %d (%.2f/key)", k, w.by[k], float64(w.by[k])/float64(per)))
	}
	for k, v := range w.reviews {
		out = append(out, fmt.Sprintf("not counted, as they store nothing: `%s` %d (%.2f/key), the admission webhook's grant check", k, v, float64(v)/float64(per)))
	}
	return out
}

// count returns the writes of one "verb kind".
func (w *writeCounter) count(verbKind string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.by[verbKind]
}

// quiet waits until no write happened for d, at most limit.
func (w *writeCounter) quiet(d, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if time.Since(time.Unix(0, w.last.Load())) >= d {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *writeCounter) newClient(cfg *rest.Config, opts client.Options) (client.Client, error) {
	return testenv.ObservingClient(w.add)(cfg, opts)
}
