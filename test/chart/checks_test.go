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

// What a render must hold: checkConsistent for every variant, one check
// per variant for what its values change.

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/keyward/keyward/webhook"
)

// The manager's defaults for the names it is told by flag
// (internal/cmd/manager.go); --verifier-url's is
// http://keyward-verifier.<namespace>.svc (internal/manager).
var managerDefaults = map[string]string{
	"--webhook-service-name":             webhook.DefaultServiceName,
	"--validating-webhook-configuration": webhook.DefaultValidatingWebhookConfiguration,
	"--mutating-webhook-configuration":   webhook.DefaultMutatingWebhookConfiguration,
	"--webhook-cert-secret":              webhook.DefaultCertSecretName,
}

// container returns the first container of a Deployment's pod template.
func container(t *testing.T, objs []*unstructured.Unstructured, deployment string) map[string]any {
	t.Helper()
	d := find(objs, "Deployment", deployment)
	if d == nil {
		t.Fatalf("no Deployment %s", deployment)
	}
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		t.Fatalf("Deployment %s has no container", deployment)
	}
	return cs[0].(map[string]any)
}

func args(t *testing.T, objs []*unstructured.Unstructured, deployment string) []string {
	t.Helper()
	a, _, _ := unstructured.NestedStringSlice(container(t, objs, deployment), "args")
	return a
}

// flag returns the value of --name=value in args, or def.
func flag(args []string, name, def string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return def
}

// selects reports whether every label of selector is in labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func stringMap(u *unstructured.Unstructured, fields ...string) map[string]string {
	m, _, _ := unstructured.NestedStringMap(u.Object, fields...)
	return m
}

// selected returns the Deployments whose pods selector selects.
func selected(objs []*unstructured.Unstructured, selector map[string]string) []string {
	var names []string
	for _, d := range objs {
		if d.GetKind() == "Deployment" && selects(selector, stringMap(d, "spec", "template", "metadata", "labels")) {
			names = append(names, d.GetName())
		}
	}
	return names
}

// checkConsistent: the names and labels of a render point at each other.
// Objects are in the release's namespace; selectors select one Deployment;
// bindings name rendered roles and ServiceAccounts; the webhooks name the
// rendered Service; the names the manager is given (or defaults to) are
// the rendered ones, and its RBAC resourceNames are the two rendered
// webhook configurations.
func checkConsistent(t *testing.T, objs []*unstructured.Unstructured, namespace string) {
	t.Helper()
	for _, u := range objs {
		if ns := u.GetNamespace(); ns != "" && ns != namespace {
			t.Errorf("%s %s is in namespace %s, not the release's %s", u.GetKind(), u.GetName(), ns, namespace)
		}
	}
	checkSelectors(t, objs)
	checkBindings(t, objs)
	checkManagerNames(t, objs, namespace)
}

func checkSelectors(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		var sel map[string]string
		switch u.GetKind() {
		case "Deployment":
			sel = stringMap(u, "spec", "selector", "matchLabels")
			if !selects(sel, stringMap(u, "spec", "template", "metadata", "labels")) {
				t.Errorf("Deployment %s: its selector %v does not select its pods", u.GetName(), sel)
			}
			continue
		case "Service":
			sel = stringMap(u, "spec", "selector")
		case "PodDisruptionBudget":
			sel = stringMap(u, "spec", "selector", "matchLabels")
		case "NetworkPolicy":
			sel = stringMap(u, "spec", "podSelector", "matchLabels")
		default:
			continue
		}
		if got := selected(objs, sel); len(got) != 1 {
			t.Errorf("%s %s selects the pods of %v, want one Deployment's", u.GetKind(), u.GetName(), got)
		}
	}
}

func checkBindings(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() != "RoleBinding" && u.GetKind() != "ClusterRoleBinding" {
			continue
		}
		ref := stringMap(u, "roleRef")
		if find(objs, ref["kind"], ref["name"]) == nil {
			t.Errorf("%s %s: roleRef %s %s is not rendered", u.GetKind(), u.GetName(), ref["kind"], ref["name"])
		}
		subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
		for _, s := range subjects {
			s := s.(map[string]any)
			if sa := find(objs, "ServiceAccount", s["name"].(string)); sa == nil || sa.GetNamespace() != s["namespace"] {
				t.Errorf("%s %s: subject %v is not a rendered ServiceAccount", u.GetKind(), u.GetName(), s)
			}
		}
	}
}

// manager finds the manager's Deployment: the one whose first argument is
// "manager".
func manager(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	for _, d := range objs {
		if d.GetKind() == "Deployment" && args(t, objs, d.GetName())[0] == "manager" {
			return d.GetName()
		}
	}
	t.Fatal("no manager Deployment")
	return ""
}

func checkManagerNames(t *testing.T, objs []*unstructured.Unstructured, namespace string) {
	t.Helper()
	a := args(t, objs, manager(t, objs))
	svc := flag(a, "--webhook-service-name", managerDefaults["--webhook-service-name"])
	if s := find(objs, "Service", svc); s == nil || !hasPort(s, 443) {
		t.Errorf("the manager's webhook Service %s is not rendered with port 443", svc)
	}
	configs := []string{
		flag(a, "--mutating-webhook-configuration", managerDefaults["--mutating-webhook-configuration"]),
		flag(a, "--validating-webhook-configuration", managerDefaults["--validating-webhook-configuration"]),
	}
	for i, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		c := find(objs, kind, configs[i])
		if c == nil {
			t.Errorf("the manager's %s %s is not rendered", kind, configs[i])
			continue
		}
		webhooks, _, _ := unstructured.NestedSlice(c.Object, "webhooks")
		for _, w := range webhooks {
			s := serviceRef(w)
			if s["name"] != svc || s["namespace"] != namespace {
				t.Errorf("%s %s routes to Service %s/%s, not %s/%s", kind, configs[i], s["namespace"], s["name"], namespace, svc)
			}
		}
	}
	if got := resourceNames(objs, manager(t, objs)); !slices.Equal(got, configs) {
		t.Errorf("the manager's ClusterRole may update %v, want the webhook configurations %v", got, configs)
	}
	checkVerifierURL(t, objs, flag(a, "--verifier-url", "http://keyward-verifier."+namespace+".svc"), namespace)
}

// serviceRef returns the name and namespace of a webhook's Service.
func serviceRef(hook any) map[string]string {
	w, _ := hook.(map[string]any)
	name, _, _ := unstructured.NestedString(w, "clientConfig", "service", "name")
	ns, _, _ := unstructured.NestedString(w, "clientConfig", "service", "namespace")
	return map[string]string{"name": name, "namespace": ns}
}

// resourceNames returns the resourceNames of the rules of ClusterRole name.
func resourceNames(objs []*unstructured.Unstructured, name string) []string {
	var names []string
	r := find(objs, "ClusterRole", name)
	if r == nil {
		return nil
	}
	rules, _, _ := unstructured.NestedSlice(r.Object, "rules")
	for _, rule := range rules {
		n, _, _ := unstructured.NestedStringSlice(rule.(map[string]any), "resourceNames")
		names = append(names, n...)
	}
	return names
}

// checkVerifierURL: the manager's verifier URL is a rendered Service's, in
// the release's namespace, on a port of it.
func checkVerifierURL(t *testing.T, objs []*unstructured.Unstructured, raw, namespace string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	port := 80
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	name, rest, _ := strings.Cut(u.Hostname(), ".")
	if s := find(objs, "Service", name); s == nil || rest != namespace+".svc" || !hasPort(s, port) {
		t.Errorf("the manager's --verifier-url %s is not a rendered Service's port", raw)
	}
}

func hasPort(svc *unstructured.Unstructured, port int) bool {
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	for _, p := range ports {
		if n, _, _ := unstructured.NestedInt64(p.(map[string]any), "port"); n == int64(port) {
			return true
		}
	}
	return false
}

func wantCount(kind string, n int) func(*testing.T, []*unstructured.Unstructured) {
	return func(t *testing.T, objs []*unstructured.Unstructured) {
		t.Helper()
		if got := kinds(objs)[kind]; got != n {
			t.Errorf("%d %s rendered, want %d", got, kind, n)
		}
	}
}

func checkDefault(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for kind, n := range map[string]int{"CustomResourceDefinition": 3, "Deployment": 2, "PodDisruptionBudget": 2,
		"MutatingWebhookConfiguration": 1, "ValidatingWebhookConfiguration": 1, "Service": 2,
		"NetworkPolicy": 0, "ServiceMonitor": 0, "PrometheusRule": 0, "Certificate": 0, "Issuer": 0, "Namespace": 0, "ConfigMap": 0} {
		wantCount(kind, n)(t, objs)
	}
	for _, u := range objs {
		if u.GetKind() == "CustomResourceDefinition" && u.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s is not kept on uninstall", u.GetName())
		}
	}
	for _, a := range args(t, objs, "keyward-manager") {
		if _, ok := managerDefaults[strings.SplitN(a, "=", 2)[0]]; ok || strings.HasPrefix(a, "--verifier-url") {
			t.Errorf("the default install passes the manager %s: its default is the rendered name", a)
		}
	}
}

func checkCRDsNotKept(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	wantCount("CustomResourceDefinition", 3)(t, objs)
	for _, u := range objs {
		if _, ok := u.GetAnnotations()["helm.sh/resource-policy"]; ok {
			t.Errorf("%s %s has helm.sh/resource-policy with crds.keep=false", u.GetKind(), u.GetName())
		}
	}
}

// checkCertManager: a Certificate from the issuer named, for the webhook
// Service's DNS names, into the Secret the manager mounts and reads
// (--webhook-cert-mode=external), named by both configurations'
// cert-manager.io/inject-ca-from.
func checkCertManager(issuer, issuerKind string) func(*testing.T, []*unstructured.Unstructured) {
	return func(t *testing.T, objs []*unstructured.Unstructured) {
		t.Helper()
		wantCount("Certificate", 1)(t, objs)
		wantCount("Issuer", map[bool]int{true: 1}[issuerKind == "Issuer"])(t, objs)
		var cert *unstructured.Unstructured
		for _, u := range objs {
			if u.GetKind() == "Certificate" {
				cert = u
			}
		}
		if cert == nil {
			return
		}
		ref := stringMap(cert, "spec", "issuerRef")
		if ref["name"] != issuer || ref["kind"] != issuerKind || (issuerKind == "Issuer" && find(objs, "Issuer", issuer) == nil) {
			t.Errorf("the Certificate's issuerRef is %v, want %s %s (rendered if an Issuer)", ref, issuerKind, issuer)
		}
		m := manager(t, objs)
		a := args(t, objs, m)
		if !slices.Contains(a, "--webhook-cert-mode=external") {
			t.Errorf("the manager's arguments %v lack --webhook-cert-mode=external", a)
		}
		secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
		vols, _, _ := unstructured.NestedSlice(find(objs, "Deployment", m).Object, "spec", "template", "spec", "volumes")
		got := ""
		for _, v := range vols {
			if vol := v.(map[string]any); vol["name"] == "webhook-certs" {
				got, _, _ = unstructured.NestedString(vol, "secret", "secretName")
			}
		}
		if got != secret {
			t.Errorf("the manager mounts Secret %q as webhook-certs, the Certificate writes %q", got, secret)
		}
		svc := flag(a, "--webhook-service-name", managerDefaults["--webhook-service-name"])
		dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
		if !slices.Contains(dns, svc+"."+cert.GetNamespace()+".svc") {
			t.Errorf("the Certificate's DNS names %v lack the webhook Service %s's", dns, svc)
		}
		for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
			for _, u := range objs {
				if u.GetKind() == kind && u.GetAnnotations()["cert-manager.io/inject-ca-from"] != cert.GetNamespace()+"/"+cert.GetName() {
					t.Errorf("%s %s: inject-ca-from %q, want the Certificate %s/%s", kind, u.GetName(),
						u.GetAnnotations()["cert-manager.io/inject-ca-from"], cert.GetNamespace(), cert.GetName())
				}
			}
		}
	}
}

func checkNetworkPolicy(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	np := find(objs, "NetworkPolicy", "keyward-verifier")
	if np == nil {
		t.Fatal("no NetworkPolicy keyward-verifier")
	}
	if got := selected(objs, stringMap(np, "spec", "podSelector", "matchLabels")); !slices.Equal(got, []string{"keyward-verifier"}) {
		t.Errorf("the NetworkPolicy selects the pods of %v", got)
	}
	rules, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
	var from []string
	for _, r := range rules {
		peers, _, _ := unstructured.NestedSlice(r.(map[string]any), "from")
		for _, p := range peers {
			ns, _, _ := unstructured.NestedString(p.(map[string]any), "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name")
			from = append(from, ns)
		}
	}
	if want := []string{"ingress-nginx", "traefik", "monitoring"}; !slices.Equal(from, want) {
		t.Errorf("the NetworkPolicy admits namespaces %v, want %v", from, want)
	}
}

// checkMonitoring: each ServiceMonitor selects one Service, whose metrics
// port is a named port of the pods it selects; a PrometheusRule; the
// dashboard's ConfigMap, when the chart carries the dashboard.
func checkMonitoring(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	wantCount("ServiceMonitor", 2)(t, objs)
	wantCount("PrometheusRule", 1)(t, objs)
	for _, sm := range objs {
		if sm.GetKind() != "ServiceMonitor" {
			continue
		}
		if sm.GetLabels()["release"] != "prometheus" {
			t.Errorf("ServiceMonitor %s lacks monitoring.serviceMonitor.labels", sm.GetName())
		}
		var svcs []*unstructured.Unstructured
		for _, s := range objs {
			if s.GetKind() == "Service" && selects(stringMap(sm, "spec", "selector", "matchLabels"), s.GetLabels()) {
				svcs = append(svcs, s)
			}
		}
		if len(svcs) != 1 {
			t.Errorf("ServiceMonitor %s selects %d Services, want 1", sm.GetName(), len(svcs))
			continue
		}
		checkMetricsPort(t, objs, svcs[0])
	}
	if !dashboardInChart() {
		t.Log("charts/keyward/files/keyward-dashboard.json does not exist yet: no dashboard ConfigMap checked")
		return
	}
	cm := find(objs, "ConfigMap", "keyward-dashboard")
	want, err := os.ReadFile(filepath.Join(chartDir(), "files", "keyward-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cm == nil || cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Fatal("no ConfigMap keyward-dashboard labelled grafana_dashboard: \"1\"")
	}
	if got, _, _ := unstructured.NestedString(cm.Object, "data", "keyward-dashboard.json"); got != strings.TrimRight(string(want), "\n")+"\n" {
		t.Error("the dashboard ConfigMap does not hold files/keyward-dashboard.json")
	}
}

// checkMetricsPort: svc's port "metrics" targets a named container port of
// the pods svc selects.
func checkMetricsPort(t *testing.T, objs []*unstructured.Unstructured, svc *unstructured.Unstructured) {
	t.Helper()
	deps := selected(objs, stringMap(svc, "spec", "selector"))
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if len(deps) != 1 || len(ports) != 1 {
		t.Fatalf("Service %s: selects %v, ports %v", svc.GetName(), deps, ports)
	}
	target, _, _ := unstructured.NestedString(ports[0].(map[string]any), "targetPort")
	cports, _, _ := unstructured.NestedSlice(container(t, objs, deps[0]), "ports")
	for _, p := range cports {
		if p.(map[string]any)["name"] == target {
			return
		}
	}
	t.Errorf("Service %s targets port %q, which %s's container does not name", svc.GetName(), target, deps[0])
}

func checkReplicas(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for name, want := range map[string]int64{"keyward-manager": 3, "keyward-verifier": 5} {
		if got, _, _ := unstructured.NestedInt64(find(objs, "Deployment", name).Object, "spec", "replicas"); got != want {
			t.Errorf("Deployment %s: %d replicas, want %d", name, got, want)
		}
	}
	if find(objs, "PodDisruptionBudget", "keyward-manager") != nil {
		t.Error("the manager's PodDisruptionBudget is rendered though disabled")
	}
	pdb := find(objs, "PodDisruptionBudget", "keyward-verifier")
	if pdb == nil {
		t.Fatal("no PodDisruptionBudget keyward-verifier")
	}
	if got, _, _ := unstructured.NestedString(pdb.Object, "spec", "minAvailable"); got != "60%" {
		t.Errorf("the verifier's PodDisruptionBudget: minAvailable %q, want 60%%", got)
	}
}

func checkVerifierSettings(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	a := args(t, objs, "keyward-verifier")
	for _, want := range []string{"--trusted-proxies=10.0.0.0/8,fd00::/8", "--last-used-interval=5m", "--grpc-listen=:9001"} {
		if !slices.Contains(a, want) {
			t.Errorf("the verifier's arguments %v lack %s", a, want)
		}
	}
	svc := find(objs, "Service", "keyward-verifier")
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	want := map[string][2]any{"http": {int64(8080), "http"}, "grpc": {int64(9002), "grpc"}}
	for _, p := range ports {
		p := p.(map[string]any)
		if w := want[p["name"].(string)]; p["port"] != w[0] || p["targetPort"] != w[1] {
			t.Errorf("the verifier Service's port %v, want %v", p, w)
		}
	}
	if got := flag(args(t, objs, "keyward-manager"), "--verifier-url", ""); got != "http://keyward-verifier.keyward-system.svc:8080" {
		t.Errorf("the manager's --verifier-url is %q", got)
	}
}

// checkPrefixed: with release "acme", every object is named acme-keyward-*,
// and the manager is told each name that differs from its default.
func checkPrefixed(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() != "CustomResourceDefinition" && !strings.HasPrefix(u.GetName(), "acme-keyward-") {
			t.Errorf("%s %s is not named after the release", u.GetKind(), u.GetName())
		}
	}
	a := args(t, objs, "acme-keyward-manager")
	for f := range managerDefaults {
		if flag(a, f, "") == "" {
			t.Errorf("the manager is not given %s", f)
		}
	}
	if got := flag(a, "--webhook-cert-secret", ""); got != "acme-keyward-webhook-cert" {
		t.Errorf("--webhook-cert-secret=%s", got)
	}
	checkCertManager("acme-keyward-selfsigned", "Issuer")(t, objs)
}

func schedulingValues() map[string]any {
	pod := func(extra string) map[string]any {
		return map[string]any{
			"extraArgs":         []string{extra},
			"podAnnotations":    map[string]any{"example.com/team": "platform"},
			"podLabels":         map[string]any{"example.com/cost-center": "auth"},
			"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
			"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "keyward", "effect": "NoSchedule"}},
			"affinity":          map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "kubernetes.io/arch", "operator": "In", "values": []string{"amd64", "arm64"}}}}}}}},
			"priorityClassName": "system-cluster-critical",
		}
	}
	m, v := pod("--zap-log-level=debug"), pod("--shutdown-delay=10s")
	m["leaderElect"] = false
	m["watchNamespaces"] = []string{"team-a", "team-b"}
	v["topologySpread"] = false
	return map[string]any{
		"image":            map[string]any{"digest": "sha256:" + strings.Repeat("ab", 32), "pullPolicy": "IfNotPresent"},
		"imagePullSecrets": []any{map[string]any{"name": "regcred"}},
		"manager":          m,
		"verifier":         v,
	}
}

func checkScheduling(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for name, want := range map[string][]string{
		"keyward-manager":  {"--zap-log-level=debug", "--watch-namespaces=team-a,team-b"},
		"keyward-verifier": {"--shutdown-delay=10s"},
	} {
		c := container(t, objs, name)
		if c["image"] != "ghcr.io/keyward/keyward@sha256:"+strings.Repeat("ab", 32) || c["imagePullPolicy"] != "IfNotPresent" {
			t.Errorf("%s: image %v, pull policy %v", name, c["image"], c["imagePullPolicy"])
		}
		a := args(t, objs, name)
		for _, w := range want {
			if !slices.Contains(a, w) {
				t.Errorf("%s's arguments %v lack %s", name, a, w)
			}
		}
		d := find(objs, "Deployment", name)
		spec, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
		for _, f := range []string{"nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"} {
			if spec[f] == nil {
				t.Errorf("%s's pods have no %s", name, f)
			}
		}
		if stringMap(d, "spec", "template", "metadata", "labels")["example.com/cost-center"] != "auth" ||
			stringMap(d, "spec", "selector", "matchLabels")["example.com/cost-center"] != "" {
			t.Errorf("%s: podLabels belong on the pods and not in the selector", name)
		}
	}
	if slices.Contains(args(t, objs, "keyward-manager"), "--leader-elect") {
		t.Error("the manager elects a leader with manager.leaderElect=false")
	}
	if _, ok, _ := unstructured.NestedSlice(find(objs, "Deployment", "keyward-verifier").Object, "spec", "template", "spec", "topologySpreadConstraints"); ok {
		t.Error("the verifier spreads with verifier.topologySpread=false")
	}
}

// shardValues are the chart README's sharding example: the release's
// verifier holds one group's keys, two shards hold others', one with
// replicas of its own; with the NetworkPolicy and monitoring, which must
// cover every shard.
func shardValues() map[string]any {
	return map[string]any{
		"verifier": map[string]any{
			"keyGroups": []string{"shop/orders"}, "trustedProxies": []string{"10.0.0.0/8"},
			"shards": []any{
				map[string]any{"name": "billing", "keyGroups": []string{"billing/invoices"}},
				map[string]any{"name": "iot", "keyGroups": []string{"iot/devices", "iot/gateways"}, "replicas": 3},
				map[string]any{"name": "edge", "keyGroups": []string{"edge/sensors"}, "replicas": 1},
			},
		},
		"networkPolicy": map[string]any{"enabled": true},
		"monitoring":    map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
	}
}

// checkShards: each shard is a Deployment holding its groups' keys (one
// --key-groups), with the verifier's other settings and ServiceAccount, a
// Service, a PodDisruptionBudget, a NetworkPolicy and a ServiceMonitor of
// its own; the KeyGroups' verify URL stays the release's Service.
func checkShards(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	main := args(t, objs, "keyward-verifier")
	for name, want := range map[string]struct {
		groups   string
		replicas int64
	}{
		"keyward-verifier":         {"shop/orders", 2},
		"keyward-verifier-billing": {"billing/invoices", 2},
		"keyward-verifier-iot":     {"iot/devices,iot/gateways", 3},
		"keyward-verifier-edge":    {"edge/sensors", 1},
	} {
		a := args(t, objs, name)
		var groups []string
		for _, arg := range a {
			if g, ok := strings.CutPrefix(arg, "--key-groups="); ok {
				groups = append(groups, g)
			}
		}
		if !slices.Equal(groups, []string{want.groups}) {
			t.Errorf("Deployment %s: --key-groups %v, want once %s", name, groups, want.groups)
		}
		other := func(args []string) []string {
			return slices.DeleteFunc(slices.Clone(args), func(a string) bool { return strings.HasPrefix(a, "--key-groups=") })
		}
		if !slices.Equal(other(a), other(main)) {
			t.Errorf("Deployment %s: arguments %v, want the verifier's %v but for --key-groups", name, a, main)
		}
		d := find(objs, "Deployment", name)
		if got, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); got != want.replicas {
			t.Errorf("Deployment %s: %d replicas, want %d", name, got, want.replicas)
		}
		if sa, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName"); sa != "keyward-verifier" {
			t.Errorf("Deployment %s runs as %q, want the verifier's ServiceAccount", name, sa)
		}
		for _, kind := range []string{"Service", "NetworkPolicy"} {
			if find(objs, kind, name) == nil {
				t.Errorf("no %s %s", kind, name)
			}
		}
		// One replica under a PodDisruptionBudget would block every drain.
		if pdb := find(objs, "PodDisruptionBudget", name) != nil; pdb != (want.replicas >= 2) {
			t.Errorf("Deployment %s of %d replicas: PodDisruptionBudget rendered %v", name, want.replicas, pdb)
		}
	}
	wantCount("Deployment", 5)(t, objs)
	wantCount("ServiceMonitor", 5)(t, objs)
	wantCount("ServiceAccount", 2)(t, objs)
	if got := flag(args(t, objs, "keyward-manager"), "--verifier-url", ""); got != "" {
		t.Errorf("the manager is given --verifier-url=%s; the KeyGroups' verify URL is the release's verifier Service", got)
	}
}
