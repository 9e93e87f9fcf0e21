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

package chart

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// variant is one documented way of installing the chart (charts/keyward's
// README): its values, and what its render must hold beyond what every
// render must (checkConsistent).
type variant struct {
	name, release, namespace string
	values                   map[string]any
	check                    func(t *testing.T, objs []*unstructured.Unstructured)
}

func variants() []variant {
	return []variant{
		{name: "default", release: "keyward", namespace: "keyward-system", check: checkDefault},
		{name: "cert-manager", release: "keyward", namespace: "keyward-system",
			values: map[string]any{"webhook": map[string]any{"certificates": map[string]any{"mode": "cert-manager"}}},
			check:  checkCertManager("keyward-selfsigned", "Issuer")},
		{name: "cert-manager with the cluster's issuer", release: "keyward", namespace: "keyward-system",
			values: map[string]any{"webhook": map[string]any{"certificates": map[string]any{"mode": "cert-manager",
				"certManager": map[string]any{"issuerRef": map[string]any{"name": "corp-ca", "kind": "ClusterIssuer"}, "duration": "2160h", "renewBefore": "720h"}}}},
			check: checkCertManager("corp-ca", "ClusterIssuer")},
		{name: "NetworkPolicy", release: "keyward", namespace: "keyward-system",
			values: map[string]any{"networkPolicy": map[string]any{"enabled": true, "ingressNamespaces": []string{"ingress-nginx", "traefik"}}},
			check:  checkNetworkPolicy},
		{name: "monitoring", release: "keyward", namespace: "keyward-system",
			values: map[string]any{"monitoring": map[string]any{
				"serviceMonitor":   map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
				"prometheusRule":   map[string]any{"enabled": true},
				"grafanaDashboard": map[string]any{"enabled": dashboardInChart()}}},
			check: checkMonitoring},
		{name: "CRDs disabled", release: "keyward", namespace: "keyward-system",
			values: map[string]any{"crds": map[string]any{"enabled": false}},
			check:  wantCount("CustomResourceDefinition", 0)},
		{name: "CRDs not kept", release: "keyward", namespace: "keyward-system",
			values: map[string]any{"crds": map[string]any{"keep": false}},
			check:  checkCRDsNotKept},
		{name: "replicas and PodDisruptionBudgets", release: "keyward", namespace: "keyward-system",
			values: map[string]any{
				"manager":  map[string]any{"replicas": 3, "podDisruptionBudget": map[string]any{"enabled": false}},
				"verifier": map[string]any{"replicas": 5, "podDisruptionBudget": map[string]any{"minAvailable": "60%"}}},
			check: checkReplicas},
		// One replica under a PodDisruptionBudget would block every drain.
		{name: "one replica each, no PodDisruptionBudget", release: "keyward", namespace: "keyward-system",
			values: map[string]any{"manager": map[string]any{"replicas": 1}, "verifier": map[string]any{"replicas": 1}},
			check:  wantCount("PodDisruptionBudget", 0)},
		{name: "trusted proxies and Service ports", release: "keyward", namespace: "keyward-system",
			values: map[string]any{"verifier": map[string]any{
				"trustedProxies": []string{"10.0.0.0/8", "fd00::/8"}, "lastUsedInterval": "5m",
				"service": map[string]any{"httpPort": 8080, "grpcPort": 9002}}},
			check: checkVerifierSettings},
		{name: "another release name, with cert-manager", release: "acme", namespace: "acme-system",
			values: map[string]any{"webhook": map[string]any{"certificates": map[string]any{"mode": "cert-manager"}}},
			check:  checkPrefixed},
		{name: "namespace created", release: "keyward", namespace: "keyward-system",
			values: map[string]any{"namespace": map[string]any{"create": true}},
			check:  wantCount("Namespace", 1)},
		{name: "image, scheduling and extra arguments", release: "keyward", namespace: "keyward-system",
			values: schedulingValues(), check: checkScheduling},
		{name: "verifier shards", release: "keyward", namespace: "keyward-system", values: shardValues(), check: checkShards},
	}
}

// dashboardInChart reports whether the chart carries the Grafana dashboard
// its optional ConfigMap embeds.
func dashboardInChart() bool {
	_, err := os.Stat(filepath.Join(chartDir(), "files", "keyward-dashboard.json"))
	return err == nil
}

// TestLint: helm lint --strict of every variant reports no warning or
// error (and validates each variant's values against values.schema.json).
func TestLint(t *testing.T) {
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			out := string(run(t, "lint", chartDir(), "--strict", "--namespace", v.namespace, "-f", valuesFile(t, v.values)))
			if strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") || !strings.Contains(out, "0 chart(s) failed") {
				t.Errorf("helm lint:\n%s", out)
			}
		})
	}
}

// TestSchemaRefuses: values the schema forbids fail helm template: a
// misspelt key, a certificate mode that does not exist, a CIDR that is not
// one.
func TestSchemaRefuses(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"unknown key":    {"verifier": map[string]any{"replica": 2}},
		"unknown mode":   {"webhook": map[string]any{"certificates": map[string]any{"mode": "vault"}}},
		"not a CIDR":     {"verifier": map[string]any{"trustedProxies": []string{"10.0.0.1"}}},
		"a /33":          {"verifier": map[string]any{"trustedProxies": []string{"10.0.0.0/33"}}},
		"an IPv6 /129":   {"verifier": map[string]any{"trustedProxies": []string{"fd00::/129"}}},
		"negative count": {"manager": map[string]any{"replicas": -1}},
		"a duration in days": {"webhook": map[string]any{"certificates": map[string]any{"mode": "cert-manager",
			"certManager": map[string]any{"duration": "90d"}}}},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := []string{"template", "keyward", chartDir(), "-f", valuesFile(t, values)}
			if err := runErr(t, cmd...); err == nil || !strings.Contains(err.Error(), "values don't meet the specifications of the schema") {
				t.Errorf("helm template with %v: %v, want a schema error", values, err)
			}
		})
	}
}

// TestShardsRefused: shard values that would make two settings disagree,
// or a name Kubernetes refuses, fail helm template with an error that
// names the value and says what to do.
func TestShardsRefused(t *testing.T) {
	shard := func(name string, groups ...string) map[string]any {
		return map[string]any{"name": name, "keyGroups": groups}
	}
	for name, tt := range map[string]struct {
		values map[string]any
		want   string
	}{
		"--key-groups in extraArgs beside shards": {
			map[string]any{"verifier": map[string]any{"extraArgs": []string{"--key-groups=a/b"}, "shards": []any{shard("billing", "billing/invoices")}}},
			"verifier.extraArgs holds --key-groups while verifier.keyGroups or verifier.shards is set"},
		"--key-groups in extraArgs beside keyGroups": {
			map[string]any{"verifier": map[string]any{"extraArgs": []string{"--key-groups=a/b"}, "keyGroups": []string{"a/b"}}},
			"take --key-groups out of verifier.extraArgs"},
		"two shards of one name": {
			map[string]any{"verifier": map[string]any{"shards": []any{shard("billing", "billing/invoices"), shard("billing", "billing/refunds")}}},
			`verifier.shards[1].name "billing" is taken by another shard`},
		"a name too long for a Service": {
			map[string]any{"fullnameOverride": strings.Repeat("k", 40), "verifier": map[string]any{"shards": []any{shard(strings.Repeat("s", 10), "a/b")}}},
			"longer than 63 characters: use a shorter shard name, or fullnameOverride"},
		"a shard named like a metrics Service": {
			map[string]any{"verifier": map[string]any{"shards": []any{shard("metrics", "a/b")}}},
			`verifier.shards[0].name "metrics" would share its Service's name with a verifier's metrics Service`},
		"a shard without KeyGroups": {
			map[string]any{"verifier": map[string]any{"shards": []any{shard("billing")}}},
			"values don't meet the specifications of the schema"},
		"a shard name that is not a DNS label": {
			map[string]any{"verifier": map[string]any{"shards": []any{shard("Billing_EU", "billing/invoices")}}},
			"values don't meet the specifications of the schema"},
		"a KeyGroup that is not <namespace>/<name>": {
			map[string]any{"verifier": map[string]any{"shards": []any{shard("billing", "invoices")}}},
			"values don't meet the specifications of the schema"},
	} {
		t.Run(name, func(t *testing.T) {
			err := runErr(t, "template", "keyward", chartDir(), "-f", valuesFile(t, tt.values))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("helm template with %v: %v, want an error with %q", tt.values, err, tt.want)
			}
		})
	}
}

// TestNotesWarnOfNoReplicas: a release whose manager or verifier (or a
// shard) runs no pod installs, since scaling to zero can be meant, but its
// notes say what stops working and which value to set; with replicas, they
// say nothing of it.
func TestNotesWarnOfNoReplicas(t *testing.T) {
	shards := []any{map[string]any{"name": "eu", "keyGroups": []string{"billing/invoices"}, "replicas": 0},
		map[string]any{"name": "us", "keyGroups": []string{"billing/refunds"}}}
	for name, tt := range map[string]struct {
		values         map[string]any
		want, wantNone []string
	}{
		"manager": {values: map[string]any{"manager": map[string]any{"replicas": 0}},
			want: []string{"manager.replicas is 0: no manager runs", "Set manager.replicas to 1 or more"}, wantNone: []string{"has 0 replicas"}},
		"verifier": {values: map[string]any{"verifier": map[string]any{"replicas": 0}},
			want: []string{"keyward-verifier has 0 replicas: every key check your ingress sends it fails", "Set verifier.replicas to 1 or more"}, wantNone: []string{"manager.replicas is 0"}},
		"one shard of two": {values: map[string]any{"verifier": map[string]any{"shards": shards}},
			want: []string{"keyward-verifier-eu has 0 replicas", "Set the replicas of shard eu in verifier.shards to 1 or more"}, wantNone: []string{"keyward-verifier has 0", "keyward-verifier-us has 0"}},
		"replicas everywhere": {values: map[string]any{},
			wantNone: []string{"has 0 replicas", "replicas is 0"}},
	} {
		t.Run(name, func(t *testing.T) {
			// A client-side dry run renders the notes without a cluster.
			out, err := helmOutput(t, []string{"KUBECONFIG=" + os.DevNull}, "install", "keyward", chartDir(), "--namespace", "keyward-system",
				"--dry-run=client", "-f", valuesFile(t, tt.values))
			if err != nil {
				t.Fatal(err)
			}
			_, notes, ok := strings.Cut(string(out), "\nNOTES:\n")
			if !ok {
				t.Fatalf("helm install --dry-run=client printed no notes:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(notes, w) {
					t.Errorf("the notes do not say %q:\n%s", w, notes)
				}
			}
			for _, w := range tt.wantNone {
				if strings.Contains(notes, w) {
					t.Errorf("the notes say %q:\n%s", w, notes)
				}
			}
		})
	}
}

// TestDryRun sends every variant's render to the API server (server-side
// apply, dry run, strict field validation), with cert-manager's and
// prometheus-operator's CRDs installed from their modules.
func TestDryRun(t *testing.T) {
	needCluster(t)
	installForeignCRDs(t)
	for _, ns := range []string{"keyward-system", "acme-system"} {
		err := cluster.client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			objs := render(t, v.release, v.namespace, v.values)
			checkConsistent(t, objs, v.namespace)
			v.check(t, objs)
			for _, u := range objs {
				if err := dryRun(context.Background(), u); err != nil {
					t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
				}
			}
			t.Logf("%d objects accepted: %v", len(objs), kinds(objs))
		})
	}
}
