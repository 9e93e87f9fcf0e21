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
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/keyward/keyward/internal/record"
)

// A shard's selector matches exactly the listed pairs: not a pair made of
// one listed group's namespace and another's name.
func TestKeySelector(t *testing.T) {
	sel, err := keySelector([]string{"iot/devices", "billing/invoices", "iot/devices"})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := labels.Parse(sel)
	if err != nil {
		t.Fatalf("%q: %v", sel, err)
	}
	secret := func(ns, group string) labels.Set {
		return labels.Set((&record.Record{Namespace: ns, KeyGroup: group, State: record.StateActive}).Labels("uid"))
	}
	for _, c := range []struct {
		ns, group string
		want      bool
	}{
		{"iot", "devices", true},
		{"billing", "invoices", true},
		{"iot", "invoices", false}, // the cross product
		{"billing", "devices", false},
		{"other", "devices", false},
	} {
		if got := parsed.Matches(secret(c.ns, c.group)); got != c.want {
			t.Errorf("%s/%s: selected %v, want %v (%s)", c.ns, c.group, got, c.want, sel)
		}
	}
	if strings.Count(sel, ",") != 2 {
		t.Errorf("the duplicate pair is not folded: %s", sel)
	}
	for _, bad := range []string{"devices", "/devices", "iot/", "a/b/c"} {
		if _, err := keySelector([]string{bad}); err == nil || !strings.Contains(err.Error(), "--key-groups") {
			t.Errorf("%q: %v, want an error naming --key-groups", bad, err)
		}
	}
	if sel, _ := keySelector(nil); sel != record.LabelHashedKey+"=true" {
		t.Errorf("no shard: %q", sel)
	}
}

// TestWatchCountersStartAtZero: the relist counters export a series for
// both resources from the start, so that the first 410 Gone on hashed
// Secrets shows as an increase, not as a series appearing at 1.
func TestWatchCountersStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	newWatchCounters(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "resource" && m.GetCounter().GetValue() == 0 {
					seen[f.GetName()+"/"+l.GetValue()] = true
				}
			}
		}
	}
	for _, name := range []string{"keyward_verifier_watch_expired_total", "keyward_verifier_lists_total"} {
		for _, r := range []string{"secrets", "keygroups"} {
			if !seen[name+"/"+r] {
				t.Errorf("%s{resource=%q} is not exported at 0 from the start", name, r)
			}
		}
	}
}
