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
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/test/testgen"
)

// groupsExported lists the namespace/keygroup pairs of the
// keyward_verifier_requests_total series reg exports.
func groupsExported(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		if f.GetName() != "keyward_verifier_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if g := l["namespace"] + "/" + l["keygroup"]; !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	slices.Sort(out)
	return out
}

// A KeyGroup's request series go with it, whether its deletion is watched
// or found by a relist: groups created and deleted (preview namespaces, a
// tenant at play) do not grow the verifier's label set.
func TestDeletedGroupsSeriesGo(t *testing.T) {
	reg := prometheus.NewRegistry()
	gs := groupStore{NewStore(newMetrics(reg))}
	for _, g := range []string{"a", "b", "c"} {
		if err := gs.Add(testgen.KeyGroup("iot", g)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := groupsExported(t, reg), []string{"/", "iot/a", "iot/b", "iot/c"}; !slices.Equal(got, want) {
		t.Fatalf("series for %v, want %v", got, want)
	}
	if err := gs.Delete(testgen.KeyGroup("iot", "a")); err != nil {
		t.Fatal(err)
	}
	if got, want := groupsExported(t, reg), []string{"/", "iot/b", "iot/c"}; !slices.Equal(got, want) {
		t.Errorf("after deleting iot/a: series for %v, want %v", got, want)
	}
	// A relist that no longer brings iot/b (deleted while the watch was
	// down) and brings a new group.
	if err := gs.Replace([]any{testgen.KeyGroup("iot", "c"), testgen.KeyGroup("pay", "d")}, ""); err != nil {
		t.Fatal(err)
	}
	if got, want := groupsExported(t, reg), []string{"/", "iot/c", "pay/d"}; !slices.Equal(got, want) {
		t.Errorf("after a relist without iot/b: series for %v, want %v", got, want)
	}
}
