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
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

var apiKeysDesc = prometheus.NewDesc("keyward_apikeys",
	"APIKeys by phase, as the manager's cache holds them.", []string{"phase"}, nil)

var phases = []keywardv1alpha1.APIKeyPhase{
	keywardv1alpha1.APIKeyPending, keywardv1alpha1.APIKeyActive, keywardv1alpha1.APIKeyDisabled,
	keywardv1alpha1.APIKeyRevoked, keywardv1alpha1.APIKeyExpired, keywardv1alpha1.APIKeyRejected,
}

// keyCollector counts APIKeys by phase from the cache at scrape time, so the
// figure is never stale and costs nothing between scrapes.
type keyCollector struct{ reader client.Reader }

func (c keyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- apiKeysDesc }

func (c keyCollector) Collect(ch chan<- prometheus.Metric) {
	var list keywardv1alpha1.APIKeyList
	if err := c.reader.List(context.Background(), &list, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	counts := map[keywardv1alpha1.APIKeyPhase]int{}
	for i := range list.Items {
		p := list.Items[i].Status.Phase
		if p == "" {
			p = keywardv1alpha1.APIKeyPending
		}
		counts[p]++
	}
	for _, p := range phases {
		ch <- prometheus.MustNewConstMetric(apiKeysDesc, prometheus.GaugeValue, float64(counts[p]), string(p))
	}
}

// RegisterMetrics adds keyward_apikeys{phase} to the manager's metrics,
// beside controller-runtime's own. Registering twice (tests that start more
// than one manager) keeps the first.
func RegisterMetrics(reader client.Reader) error {
	err := metrics.Registry.Register(keyCollector{reader: reader})
	if _, ok := err.(prometheus.AlreadyRegisteredError); ok {
		return nil
	}
	return err
}
