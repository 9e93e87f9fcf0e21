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
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

// TestKrewManifest checks plugins/keyward.yaml against krew's Plugin
// format: every platform installs the plugin's binary under its name.
func TestKrewManifest(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "plugins", "keyward.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Version          string `json:"version"`
			Homepage         string `json:"homepage"`
			ShortDescription string `json:"shortDescription"`
			Description      string `json:"description"`
			Caveats          string `json:"caveats"`
			Platforms        []struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				URI    string `json:"uri"`
				SHA256 string `json:"sha256"`
				Files  []struct {
					From string `json:"from"`
					To   string `json:"to"`
				} `json:"files"`
				Bin string `json:"bin"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "keyward" {
		t.Errorf("not krew's Plugin keyward: %s %s %s", m.APIVersion, m.Kind, m.Metadata.Name)
	}
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(m.Spec.Version) || m.Spec.ShortDescription == "" || len(m.Spec.ShortDescription) > 50 {
		t.Errorf("version %q, shortDescription %q (krew wants vX.Y.Z and at most 50 characters)", m.Spec.Version, m.Spec.ShortDescription)
	}
	seen := map[string]bool{}
	for _, p := range m.Spec.Platforms {
		goos, goarch := p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]
		want := "kubectl-keyward"
		if goos == "windows" {
			want += ".exe"
		}
		if seen[goos+"/"+goarch] || p.Bin != want || len(p.Files) != 1 || p.Files[0].From != want ||
			!strings.Contains(p.URI, "/"+m.Spec.Version+"/") || !strings.Contains(p.URI, "_"+goos+"_"+goarch+".") ||
			!regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(p.SHA256) {
			t.Errorf("platform %s/%s: %+v", goos, goarch, p)
		}
		seen[goos+"/"+goarch] = true
	}
	for _, p := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"} {
		if !seen[p] {
			t.Errorf("no platform %s", p)
		}
	}
}

// TestKubeconfigContext: like kubectl, the plugin takes the cluster, user
// and namespace of --context, and -n over the context's namespace.
func TestKubeconfigContext(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ns, other := env.Namespace(t), env.Namespace(t)
	keysWithStatus(t, ns, map[string]keywardv1alpha1.APIKeyStatus{"here": {Phase: keywardv1alpha1.APIKeyActive, KeyID: "kt_aaaa", LastUsedTime: at(time.Now().Add(-100 * day))}})
	keysWithStatus(t, other, map[string]keywardv1alpha1.APIKeyStatus{"there": {Phase: keywardv1alpha1.APIKeyActive, KeyID: "kt_bbbb", LastUsedTime: at(time.Now().Add(-100 * day))}})

	kc, err := clientcmd.LoadFromFile(kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	admin := kc.Contexts[kc.CurrentContext]
	kc.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	kc.Contexts["nowhere"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: admin.AuthInfo}
	kc.Contexts["tenant"] = &clientcmdapi.Context{Cluster: admin.Cluster, AuthInfo: admin.AuthInfo, Namespace: ns}
	kc.CurrentContext = "nowhere"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	p := newPlugin(t)
	if got := names(t, p.ok("", "--kubeconfig", path, "--context", "tenant", "unused", "-o", "json").out); strings.Join(got, ",") != "here" {
		t.Errorf("unused --context tenant = %v", got)
	}
	if got := names(t, p.ok("", "--kubeconfig", path, "--context", "tenant", "unused", "-n", other, "-o", "json").out); strings.Join(got, ",") != "there" {
		t.Errorf("unused --context tenant -n %s = %v", other, got)
	}
	if r := p.run("", "--kubeconfig", path, "unused"); r.err == nil {
		t.Error("the current context's unreachable server was not used")
	}
}

// TestThroughKubectl builds the plugin and runs it as kubectl runs
// plugins, "kubectl keyward", from the PATH, kubectl's flags passed on.
func TestThroughKubectl(t *testing.T) {
	env.Need(t)
	t.Parallel()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "kubectl-keyward"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ops, ns := env.Namespace(t), env.Namespace(t)
	k, err := keys.Generate("kt")
	if err != nil {
		t.Fatal(err)
	}
	key := testgen.APIKey(ns, "key-00003", "app-003")
	create(t, key, hashedRecord(ops, ns, 3, k))
	setStatus(t, key, keywardv1alpha1.APIKeyStatus{Phase: keywardv1alpha1.APIKeyActive, KeyID: k.ID()})
	pointAt(t, ops, 3, key)

	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(kubectl, args...)
		cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+kubeconfig(t))
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}
	if out := run("", "plugin", "list"); !strings.Contains(out, filepath.Join(dir, "kubectl-keyward")) {
		t.Errorf("kubectl plugin list does not show the plugin:\n%s", out)
	}
	if out := run("", "keyward", "--help"); !strings.Contains(out, "kubectl keyward [command]") {
		t.Errorf("kubectl keyward --help:\n%s", out)
	}
	out := run(k.Plaintext(), "keyward", "identify", "--operator-namespace", ops)
	if f := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1]); len(f) < 7 || f[0] != ns || f[1] != "key-00003" || f[6] != "Active" {
		t.Errorf("kubectl keyward identify:\n%s", out)
	}
	if out := run("", "keyward", "revoke", "key-00003", "-n", ns); out != "apikey.keyward.dev/key-00003 revoked\n" {
		t.Errorf("kubectl keyward revoke -n: %q", out)
	}
}
