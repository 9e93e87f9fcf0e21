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

package asshipped

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/keyward/keyward/test/testenv"
)

var (
	env *testenv.Env
	// auditLog is the API server's audit log of keyward-system's
	// ServiceAccounts: which requests the manager and the verifier made,
	// as whom, and which were refused.
	auditLog string
)

// operatorNamespace is the namespace config/default installs into.
const operatorNamespace = "keyward-system"

func TestMain(m *testing.M) {
	if IsPodInit() {
		PodInit()
	}
	opts := testenv.Options{}
	if !testenv.Short() {
		root, err := testenv.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		dir := filepath.Join(root, "bin", "asshipped", "run")
		_ = os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		policy := filepath.Join(dir, "audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(AuditPolicy(operatorNamespace)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		auditLog = filepath.Join(dir, "audit.log")
		opts.APIServerFlags = map[string]string{
			// Webhook calls go to the Service's endpoints, not its
			// ClusterIP: there is no kube-proxy.
			"enable-aggregator-routing": "true",
			"audit-policy-file":         policy,
			"audit-log-path":            auditLog,
		}
	}
	testenv.Main(m, &env, opts)
}

// needHost fails the test, or skips it unless KEYWARD_REQUIRE_E2E=1, when
// this machine cannot run pods: root that may make namespaces (for mounts
// and veth pairs), ip, nsenter and kubectl (for kustomize).
func needHost(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"ip", "nsenter", "kubectl"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	// The namespaces a pod gets (a container without CAP_SYS_ADMIN has
	// root but cannot make them).
	probe := exec.Command("/bin/true")
	probe.SysProcAttr = &syscall.SysProcAttr{Cloneflags: podNamespaces}
	if err := probe.Run(); err != nil {
		missing = append(missing, fmt.Sprintf("new mount, network, UTS and IPC namespaces (%v)", err))
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("running the shipped Deployments as processes needs %v", missing)
	if os.Getenv("KEYWARD_REQUIRE_E2E") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var entrypoint struct {
	once sync.Once
	path string
	err  error
}

// buildKeyward builds the image's binary as the Dockerfile does, into
// bin/asshipped/keyward.
func buildKeyward(t *testing.T) string {
	t.Helper()
	entrypoint.once.Do(func() {
		dir := filepath.Join(env.Root, "bin", "asshipped")
		entrypoint.path = filepath.Join(dir, "keyward")
		cmd := exec.Command("go", "build", "-trimpath", "-o", entrypoint.path, ".")
		cmd.Dir = env.Root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			entrypoint.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if entrypoint.err != nil {
		t.Fatal(entrypoint.err)
	}
	return entrypoint.path
}
