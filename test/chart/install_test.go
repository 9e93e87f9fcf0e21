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
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keyward/keyward/test/testenv"
)

// get reads an object of apiVersion and kind from the control plane.
func get(apiVersion, kind, namespace, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	err := cluster.client.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: name}, u)
	return u, err
}

// TestHelmInstall installs the chart with its default values, as the
// README says, into this package's control plane, which started without
// keyward's CRDs; then upgrades and uninstalls it.
//
// No pod starts here: the local control plane has no kubelet, scheduler or
// kube-proxy (and this package runs no kube-controller-manager), so the
// Deployments are stored and never run, the manager never injects the
// webhooks' CA bundle, and nothing waits for readiness (Helm 4's default,
// --wait=hookOnly, with no hooks). What is checked is what the API server
// itself does with the release: every object is created, the CRDs become
// Established, the webhook configurations are present and routed to the
// webhook Service, an upgrade changes what it should, and an uninstall
// leaves the CRDs (crds.keep) and removes the rest.
func TestHelmInstall(t *testing.T) {
	needCluster(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := testenv.WriteKubeconfig(cluster.cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	const ns = "keyward-system"
	kube := []string{"--kubeconfig", kubeconfig, "--namespace", ns}
	notes := string(run(t, append([]string{"install", "keyward", chartDir(), "--create-namespace"}, kube...)...))
	for _, want := range []string{
		"http://keyward-verifier.keyward-system.svc/v1/verify/<namespace>/<keygroup>",
		"keyward-verifier.keyward-system.svc:9001",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("helm install's notes do not say %s:\n%s", want, notes)
		}
	}

	crds := crdNames(t)
	for _, name := range crds {
		testenv.Eventually(t, 30*time.Second, func() error { return established(name) })
	}
	checkWebhooksInstalled(t, ns)
	for _, o := range [][2]string{{"Deployment", "keyward-manager"}, {"Deployment", "keyward-verifier"}, {"Service", "keyward-verifier"}, {"Service", "keyward-webhook"}} {
		if _, err := get(map[string]string{"Deployment": "apps/v1", "Service": "v1"}[o[0]], o[0], ns, o[1]); err != nil {
			t.Errorf("%s %s: %v", o[0], o[1], err)
		}
	}
	if s := status(t, kube); s != "deployed" {
		t.Fatalf("helm status: %s", s)
	}

	run(t, append([]string{"upgrade", "keyward", chartDir(), "--reuse-values", "--set", "verifier.replicas=3"}, kube...)...)
	d, err := get("apps/v1", "Deployment", ns, "keyward-verifier")
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 3 {
		t.Errorf("after helm upgrade --set verifier.replicas=3, the verifier has %d replicas", r)
	}

	run(t, append([]string{"uninstall", "keyward"}, kube...)...)
	for _, name := range crds {
		if err := established(name); err != nil {
			t.Errorf("after helm uninstall (crds.keep): %v", err)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		_, err := get("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", "keyward-validating-webhook-configuration")
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("after helm uninstall, the validating webhook configuration: %v", err)
		}
		return nil
	})
}

// crdNames are the names of the CRDs the chart carries.
func crdNames(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(chartDir(), "files", "crds", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no CRD in the chart: %v", err)
	}
	var names []string
	for _, p := range paths {
		b, err := os.ReadFile(p) // #nosec G304 -- the chart's own file
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, decode(t, b)[0].GetName())
	}
	return names
}

// established reports an error unless CRD name is Established.
func established(name string) error {
	crd, err := get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", name)
	if err != nil {
		return err
	}
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		c := c.(map[string]any)
		if c["type"] == "Established" && c["status"] == "True" {
			return nil
		}
	}
	return fmt.Errorf("CRD %s is not Established: %v", name, conds)
}

// checkWebhooksInstalled: both configurations exist, with every webhook
// routed to the webhook Service in ns.
func checkWebhooksInstalled(t *testing.T, ns string) {
	t.Helper()
	for kind, name := range map[string]string{
		"ValidatingWebhookConfiguration": "keyward-validating-webhook-configuration",
		"MutatingWebhookConfiguration":   "keyward-mutating-webhook-configuration",
	} {
		c, err := get("admissionregistration.k8s.io/v1", kind, "", name)
		if err != nil {
			t.Errorf("%s %s: %v", kind, name, err)
			continue
		}
		webhooks, _, _ := unstructured.NestedSlice(c.Object, "webhooks")
		if len(webhooks) == 0 {
			t.Errorf("%s %s has no webhook", kind, name)
		}
		for _, w := range webhooks {
			s := serviceRef(w)
			if s["name"] != "keyward-webhook" || s["namespace"] != ns {
				t.Errorf("%s %s routes to %s/%s", kind, name, s["namespace"], s["name"])
			}
		}
	}
}

// status is the release's status as helm status reports it.
func status(t *testing.T, kube []string) string {
	t.Helper()
	var s struct {
		Info struct {
			Status string `json:"status"`
		} `json:"info"`
	}
	if err := json.Unmarshal(run(t, append([]string{"status", "keyward", "-o", "json"}, kube...)...), &s); err != nil {
		t.Fatal(err)
	}
	return s.Info.Status
}
