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

package dev

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/verifier"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func assets(t *testing.T) string {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := testenv.AssetsDir(root)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// children lists this process's child processes by command name.
func children(t *testing.T) []string {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var out []string
	me := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) > 1 && fields[1] == me {
			out = append(out, s[strings.IndexByte(s, '(')+1:end])
		}
	}
	return out
}

// TestDev runs "keyward dev" as a newcomer would: it gets to the ready
// line, both printed curls answer as printed, the samples are Active, and
// after Ctrl-C nothing it started is left running.
func TestDev(t *testing.T) {
	testenv.NeedControlPlane(t)
	out := &testenv.SyncBuffer{}
	// The HTTP servers' own error logs (a failed TLS handshake at the
	// webhook server, for one) go to the standard logger, which keyward
	// dev leaves on the terminal.
	serverLog := &testenv.SyncBuffer{}
	log.SetOutput(serverLog)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	envs := make(chan *Env, 1)
	done := make(chan error, 1)
	dir := t.TempDir()
	go func() {
		done <- Run(ctx, Options{Dir: dir, VerifierListen: freeAddr(t), VerifierGRPCListen: freeAddr(t), Samples: true, Assets: assets(t), Out: out}, func(e *Env) { envs <- e })
	}()
	var env *Env
	select {
	case env = <-envs:
	case err := <-done:
		t.Fatalf("keyward dev stopped: %v\n%s", err, out)
	case <-time.After(3 * time.Minute):
		t.Fatalf("no ready line after 3 minutes:\n%s", out)
	}
	printed := out.String()
	if !strings.Contains(printed, ReadyLine+"\n") {
		t.Fatalf("output lacks %q:\n%s", ReadyLine, printed)
	}
	if _, err := os.Stat(filepath.Join(dir, "kubeconfig")); err != nil {
		t.Fatalf("no kubeconfig: %v", err)
	}
	if strings.Index(printed, "kubeconfig written") > strings.Index(printed, ReadyLine) {
		t.Errorf("the kubeconfig must be written before the ready line")
	}

	t.Run("starting logs no failed TLS handshake", func(t *testing.T) {
		// Polling /readyz must not dial the webhook server before it has a
		// certificate: each try failed a handshake and printed a line.
		if n := strings.Count(serverLog.String(), "TLS handshake error"); n > 0 {
			t.Errorf("%d failed TLS handshakes logged while starting:\n%s", n, serverLog)
		}
	})

	t.Run("the printed curls answer as printed", func(t *testing.T) {
		curls := parseCurls(t, printed)
		if len(curls) != 2 {
			t.Fatalf("want 2 curls, found %d:\n%s", len(curls), printed)
		}
		for i, want := range []int{200, 403} {
			resp, err := http.DefaultClient.Do(curls[i])
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("curl %d: %d, want %d (reason %q)", i+1, resp.StatusCode, want, resp.Header.Get("X-Auth-Reason"))
			}
		}
	})

	t.Run("the printed metrics address serves the verifier's metrics", func(t *testing.T) {
		m := regexp.MustCompile(`The verifier's metrics are at (http://\S+/metrics) `).FindStringSubmatch(printed)
		if m == nil {
			t.Fatalf("no metrics address printed:\n%s", printed)
		}
		resp, err := http.Get(m[1])
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if want := `keyward_verifier_requests_total{keygroup="devices",namespace="default",reason="ok"}`; resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d, want 200 with a series %s", m[1], resp.StatusCode, want)
		}
	})

	t.Run("the printed gRPC address answers Envoy's Check", func(t *testing.T) {
		if env.VerifierGRPC == "" || !strings.Contains(printed, "served at "+env.VerifierGRPC) {
			t.Fatalf("the gRPC address %q is not printed:\n%s", env.VerifierGRPC, printed)
		}
		conn, err := grpc.NewClient(env.VerifierGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			ContextExtensions: map[string]string{verifier.ExtensionNamespace: "default", verifier.ExtensionKeyGroup: demoGroup},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "POST", Path: "/integration/device/sendmsg", Host: "api.example.com",
				Headers: map[string]string{"authorization": "Bearer " + env.DemoKey},
			}},
		}})
		if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.OK {
			t.Errorf("Check with the sample key as printed: %v, status %v", err, resp.GetStatus())
		}
	})

	t.Run("kubectl shows the sample keys Active", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(env.Config, client.Options{Scheme: kube.NewScheme()})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			var keys keywardv1alpha1.APIKeyList
			if err := c.List(context.Background(), &keys); err != nil {
				t.Fatal(err)
			}
			all := len(keys.Items) == 3
			for _, k := range keys.Items {
				all = all && meta.IsStatusConditionTrue(k.Status.Conditions, keywardv1alpha1.ConditionReady)
			}
			if all {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sample keys not all Ready: %+v", keys.Items)
			}
			time.Sleep(200 * time.Millisecond)
		}
		got, err := exec.Command(kubectl, "--kubeconfig", env.Kubeconfig, "get", "apikeys", "-A").CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, got)
		}
		for _, name := range []string{"acme-dashboard-downlinks", "acme-dashboard-export", "globex-metering"} {
			line := lineWith(string(got), name)
			if !strings.Contains(line, "Active") {
				t.Errorf("kubectl get apikeys -A: %s is not Active:\n%s", name, got)
			}
		}
		for _, kind := range []string{"keygroups", "applications"} {
			got, err := exec.Command(kubectl, "--kubeconfig", env.Kubeconfig, "wait", "--for=condition=Ready", kind, "--all", "-n", "default", "--timeout=60s").CombinedOutput()
			if err != nil {
				t.Errorf("kubectl wait %s: %v: %s", kind, err, got)
			}
		}
	})

	t.Run("every sample applies with kubectl and reaches Ready", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Fatal(err)
		}
		root, err := testenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		run := func(args ...string) string {
			t.Helper()
			out, err := exec.Command(kubectl, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		run("create", "namespace", "samples")
		out := run("apply", "-n", "samples", "-k", filepath.Join(root, "config", "samples"))
		if n := strings.Count(out, " created"); n != 7 {
			t.Errorf("kubectl apply created %d objects, want 7:\n%s", n, out)
		}
		for _, kind := range []string{"keygroups", "applications", "apikeys"} {
			run("wait", "--for=condition=Ready", kind, "--all", "-n", "samples", "--timeout=60s")
		}
	})

	t.Run("a user bound to the built-in edit role manages APIKeys", func(t *testing.T) {
		// keyward's roles for users are installed, and aggregated into
		// edit by kube-controller-manager, as in a cluster.
		ctx := context.Background()
		c, err := client.New(env.Config, client.Options{Scheme: kube.NewScheme()})
		if err != nil {
			t.Fatal(err)
		}
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "dev-editor"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "dev-editor"}},
		}
		if err := c.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
		review := func(verb, resource string) *authorizationv1.SubjectAccessReview {
			return &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: "dev-editor",
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: "default", Verb: verb, Group: keywardv1alpha1.GroupVersion.Group, Resource: resource,
				},
			}}
		}
		// Allowed once the binding and the aggregation are in effect.
		testenv.AwaitAllowed(t, c, review("create", "apikeys"))
		if ok, err := testenv.Allowed(ctx, c, review("create", "keygroups")); err != nil || ok {
			t.Errorf("edit may create keygroups.keyward.dev (%v): that is keyward-admin's", err)
		}
	})

	t.Run("admission webhooks answer", func(t *testing.T) {
		c, err := client.New(env.Config, client.Options{Scheme: kube.NewScheme()})
		if err != nil {
			t.Fatal(err)
		}
		k := &keywardv1alpha1.APIKey{}
		k.Namespace, k.Name = "default", "no-such-scope"
		k.Spec.Application = "acme-dashboard"
		k.Spec.Scopes = []keywardv1alpha1.ScopeName{"no-such-scope"}
		err = c.Create(context.Background(), k, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "spec.scopes[0]") {
			t.Errorf("an unknown scope, which only the webhook can know of, was not refused: %v", err)
		}
	})

	if n := len(children(t)); n < 2 {
		t.Fatalf("expected kube-apiserver and etcd among the children, found %v: the process check below would prove nothing", children(t))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("keyward dev: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("keyward dev did not stop within a minute of Ctrl-C")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(children(t)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range children(t) {
		if c == "kube-apiserver" || c == "etcd" {
			t.Errorf("%s is still running after Ctrl-C", c)
		}
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(env.Verifier, "http://"), time.Second); err == nil {
		t.Errorf("the verifier still listens after Ctrl-C")
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// parseCurls turns the printed curl commands into requests.
func parseCurls(t *testing.T, printed string) []*http.Request {
	t.Helper()
	var reqs []*http.Request
	lines := strings.Split(strings.ReplaceAll(printed, "\\\n", " "), "\n")
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "curl ") {
			continue
		}
		fields := strings.Fields(l)
		var url string
		headers := map[string]string{}
		for i := 1; i < len(fields); i++ {
			switch {
			case fields[i] == "-H":
				// -H 'Name: value with spaces'
				j := i + 1
				h := fields[j]
				for !strings.HasSuffix(h, "'") && j+1 < len(fields) {
					j++
					h += " " + fields[j]
				}
				name, value, _ := strings.Cut(strings.Trim(h, "'"), ": ")
				headers[name] = value
				i = j
			case strings.HasPrefix(fields[i], "http"):
				url = fields[i]
			}
		}
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		reqs = append(reqs, req)
	}
	return reqs
}

func TestDevFailsInOneLine(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for name, o := range map[string]Options{
		"port in use":    {Dir: t.TempDir(), VerifierListen: busy.Addr().String(), Assets: assets(t)},
		"missing binary": {Dir: t.TempDir(), VerifierListen: freeAddr(t), Assets: t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			err := Run(context.Background(), o, nil)
			if err == nil {
				t.Fatal("keyward dev started")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("more than one line: %q", err)
			}
			t.Logf("%v", err)
		})
	}
}
