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
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the verifier's Prometheus metrics.
type metrics struct {
	requests   *prometheus.CounterVec
	latency    prometheus.Histogram
	badRecords prometheus.Counter
	unknown    *groupStats
}

// groupStats holds a group's request counters, resolved once so a request
// does not hash label values.
type groupStats struct {
	byReason [numReasons]prometheus.Counter
}

// The labels that name a group in keyward_verifier_requests_total.
const (
	labelNamespace = "namespace"
	labelKeyGroup  = "keygroup"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_verifier_requests_total",
			Help: "Verification requests by key group and answer reason (ok for allowed).",
		}, []string{labelNamespace, labelKeyGroup, "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyward_verifier_request_duration_seconds",
			Help:    "Time to answer a verification request, from routing to the written answer.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025},
		}),
		badRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_verifier_invalid_records_total",
			Help: "Hashed Secrets that could not be decoded and were left out, and keys found in two hashed Secrets (refused as revoked).",
		}),
	}
	// Requests for groups that do not exist are counted together, so that
	// made-up URLs cannot grow the label set.
	m.unknown = m.forGroup("", "")
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.badRecords)
	}
	return m
}

func (m *metrics) forGroup(namespace, name string) *groupStats {
	s := &groupStats{}
	for r := range numReasons {
		s.byReason[r] = m.requests.WithLabelValues(namespace, name, reasonNames[r])
	}
	return s
}

// dropGroup forgets the series of a deleted group, so that groups created
// and deleted (preview namespaces, or a tenant at play) do not grow the
// label set. A request in flight that still holds the group counts into
// series no longer exported.
func (m *metrics) dropGroup(namespace, name string) {
	m.requests.DeletePartialMatch(prometheus.Labels{labelNamespace: namespace, labelKeyGroup: name})
}

func (m *metrics) observe(g *group, r Reason, d time.Duration) {
	s := m.unknown
	if g != nil {
		s = g.stats
	}
	s.byReason[r].Inc()
	m.latency.Observe(d.Seconds())
}

// registerStoreGauges exports how many keys the store holds and whether it
// has synced.
func registerStoreGauges(reg prometheus.Registerer, store *Store) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyward_verifier_keys", Help: "Keys held in memory."}, func() float64 { return float64(store.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyward_verifier_ready", Help: "1 once the caches have synced."}, func() float64 {
			if store.Synced() {
				return 1
			}
			return 0
		}),
	)
}
