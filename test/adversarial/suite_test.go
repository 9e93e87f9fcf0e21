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

package adversarial

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/dev"
	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/e2e"
	"github.com/keyward/keyward/test/testenv"
)

// probe is one attack: its name, the class of guard it tests, and the
// single assertion of what a user would notice.
type probe struct {
	class, name string
	run         func(t *testing.T)
}

// The namespaces of the suite: ns holds everything the probes attack;
// nsX holds a KeyGroup of the same name, and a grant the tenant holds
// there only.
const (
	ns  = "adv"
	nsX = "adv-x"
	// operatorNS is where keyward dev keeps the hashed records.
	operatorNS = manager.DefaultNamespace
	// host is the Host the probes' clients send to nginx.
	host = "api.example.com"
)

// Users, by impersonation: mallory is a tenant (keyward-editor in ns, with
// grant on a few scopes), alice a tenant admin (keyward-admin in ns).
const (
	mallory = "mallory"
	alice   = "alice"
)

// suite is the running environment the probes share.
type suite struct {
	env   *dev.Env
	admin client.Client
	users map[string]client.Client
	// front is nginx with ingress-nginx's template before group ns/api;
	// otherFront before ns/other; hostFront is front before an upstream
	// that takes any Host (net/http's refuses some that nginx passes on);
	// plainFront is a plain nginx auth_request (docs/ingress-nginx.md)
	// that passes the client's headers on and clears none.
	front, otherFront, hostFront, plainFront *e2e.Nginx
	// plaintext of the fixture keys, by "<namespace>/<name>".
	keys map[string]string
}

var s *suite

// TestAdversarial starts one `keyward dev`, builds the fixtures, and runs
// every probe as a parallel subtest named <side>/<class>/<name>.
func TestAdversarial(t *testing.T) {
	if testenv.SkipsEndToEnd() {
		t.Skip("starts keyward dev and nginx; not in -short (set KEYWARD_REQUIRE_E2E=1 to require it)")
	}
	start := time.Now()
	s = startSuite(t)
	t.Logf("keyward dev and fixtures ready in %s", time.Since(start).Round(time.Millisecond))

	for _, side := range []struct {
		name   string
		probes []probe
	}{
		{"tenant", tenantProbes()},
		{"request", requestProbes()},
	} {
		checkTable(t, side.probes)
		t.Run(side.name, func(t *testing.T) {
			for _, p := range side.probes {
				t.Run(p.class+"/"+p.name, func(t *testing.T) {
					t.Parallel()
					p.run(t)
				})
			}
		})
	}
	t.Logf("%d probes", len(tenantProbes())+len(requestProbes()))
}

// checkTable refuses a table with a probe lacking a class or a name, or
// two of the same name.
func checkTable(t *testing.T, probes []probe) {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range probes {
		if p.class == "" || p.name == "" || p.run == nil {
			t.Fatalf("probe %q of class %q is incomplete", p.name, p.class)
		}
		if seen[p.name] {
			t.Fatalf("two probes named %q", p.name)
		}
		seen[p.name] = true
	}
}

// startSuite runs keyward dev until the test ends, and builds the
// fixtures.
func startSuite(t *testing.T) *suite {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	assets, err := testenv.AssetsDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2e.NginxBinary(); err != nil {
		t.Fatalf("no nginx: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &testenv.SyncBuffer{}
	envs := make(chan *dev.Env, 1)
	done := make(chan error, 1)
	go func() {
		done <- dev.Run(ctx, dev.Options{Dir: t.TempDir(), VerifierListen: freeAddr(t), Assets: assets, Out: out}, func(e *dev.Env) { envs <- e })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("keyward dev: %v", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("keyward dev did not stop within a minute")
		}
	})
	st := &suite{keys: map[string]string{}, users: map[string]client.Client{}}
	select {
	case st.env = <-envs:
	case err := <-done:
		t.Fatalf("keyward dev stopped: %v\n%s", err, out)
	case <-time.After(3 * time.Minute):
		t.Fatalf("keyward dev not ready after 3 minutes:\n%s", out)
	}
	if st.admin, err = client.New(st.env.Config, client.Options{Scheme: kube.NewScheme()}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{mallory, alice} {
		st.users[u] = impersonate(t, st.env.Config, u)
	}
	st.fixtures(t)

	echo := e2e.Echo(t)
	headers := []string{"X-Auth-Key", "X-Auth-Application", "X-Auth-Scopes", "X-Auth-Namespace", "X-Auth-External-ID"}
	st.front = e2e.StartNginx(t, e2e.NginxOptions{
		AuthURL: st.env.Verifier + "/v1/verify/" + ns + "/api", Upstream: echo.URL,
		ResponseHeaders: headers, ExposeAuthReason: true,
	})
	st.otherFront = e2e.StartNginx(t, e2e.NginxOptions{
		AuthURL: st.env.Verifier + "/v1/verify/" + ns + "/other", Upstream: echo.URL,
		ResponseHeaders: headers, ExposeAuthReason: true,
	})
	st.hostFront = e2e.StartNginx(t, e2e.NginxOptions{
		AuthURL: st.env.Verifier + "/v1/verify/" + ns + "/api", Upstream: e2e.AnyHost(t),
		ResponseHeaders: headers, ExposeAuthReason: true,
	})
	st.plainFront = e2e.StartNginx(t, e2e.NginxOptions{
		Plain: true, AuthURL: st.env.Verifier + "/v1/verify/" + ns + "/api", Upstream: echo.URL,
		ResponseHeaders: headers, ExposeAuthReason: true,
	})
	// The setup itself: a good key on a request its scope covers passes.
	if a := st.send(t, st.front, get("/public/a", bearer(st.key(ns, "read")))); a.status != http.StatusOK {
		t.Fatalf("baseline: the read key on GET /public/a: %s; every probe below would prove nothing", a)
	}
	return st
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// impersonate is a client acting as user, an authenticated user with no
// other group.
func impersonate(t *testing.T, cfg *rest.Config, user string) client.Client {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	cl, err := client.New(c, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (st *suite) as(user string) client.Client { return st.users[user] }

func (st *suite) key(namespace, name string) string {
	k, ok := st.keys[namespace+"/"+name]
	if !ok {
		panic("no fixture key " + namespace + "/" + name)
	}
	return k
}

// Builders of the fixtures.

func scope(name string, methods []string, paths ...string) keywardv1alpha1.Scope {
	sc := keywardv1alpha1.Scope{Name: keywardv1alpha1.ScopeName(name)}
	r := keywardv1alpha1.ScopeRule{}
	for _, p := range paths {
		r.Paths = append(r.Paths, keywardv1alpha1.ScopePath(p))
	}
	for _, m := range methods {
		r.Methods = append(r.Methods, keywardv1alpha1.HTTPMethod(m))
	}
	sc.Rules = []keywardv1alpha1.ScopeRule{r}
	return sc
}

func int32p(i int32) *int32 { return &i }

func keyGroup(namespace, name, prefix string, mutate func(*keywardv1alpha1.KeyGroupSpec)) *keywardv1alpha1.KeyGroup {
	g := &keywardv1alpha1.KeyGroup{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	g.Spec.KeyPrefix = prefix
	g.Spec.Scopes = []keywardv1alpha1.Scope{
		scope("root", []string{"GET"}, "/"),
		scope("read", []string{"GET"}, "/public/*"),
		scope("write", []string{"POST"}, "/public/*"),
		scope("admin", nil, "/admin/*"),
	}
	g.Spec.Limits.MaxApplications = int32p(50)
	g.Spec.Limits.MaxKeysPerApplication = int32p(50)
	g.Spec.DeletionProtection.Confirm = keywardv1alpha1.ConfirmRecentlyUsed
	g.Spec.DeletionProtection.RecentUseWindow = &metav1.Duration{Duration: 72 * time.Hour}
	if mutate != nil {
		mutate(&g.Spec)
	}
	return g
}

func application(namespace, name, group, externalID string) *keywardv1alpha1.Application {
	a := &keywardv1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	a.Spec.KeyGroup = keywardv1alpha1.ObjectName(group)
	a.Spec.ExternalID = externalID
	return a
}

func apiKey(namespace, name, app string, scopes ...string) *keywardv1alpha1.APIKey {
	k := &keywardv1alpha1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	k.Spec.Application = keywardv1alpha1.ObjectName(app)
	for _, sc := range scopes {
		k.Spec.Scopes = append(k.Spec.Scopes, keywardv1alpha1.ScopeName(sc))
	}
	return k
}

func role(namespace, name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
	return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Rules: rules}
}

func grantRule(names ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{keywardv1alpha1.GroupVersion.Group}, Resources: []string{"scopes"}, Verbs: []string{"grant"}, ResourceNames: names}
}

func binding(namespace, kind, name, user string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: strings.ToLower(kind) + "-" + name + "-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
}

// fixtures creates, as the cluster admin unless said otherwise, what the
// probes attack, and waits until the keys are issued and in the state
// each probe expects.
func (st *suite) fixtures(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	create := func(c client.Client, objs ...client.Object) {
		t.Helper()
		for _, o := range objs {
			if err := c.Create(ctx, o); err != nil {
				t.Fatalf("fixture %T %s/%s: %v", o, o.GetNamespace(), o.GetName(), err)
			}
		}
	}
	create(st.admin,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsX}},
	)
	// keyward dev installed the roles shipped for users (config/rbac).
	create(st.admin,
		binding(ns, "ClusterRole", "keyward-editor", mallory),
		role(ns, "mallory-grants", grantRule("api.read", "other.admin", "lim.read", "net.read", "life.read", "mv2.read", "rk.read")),
		binding(ns, "Role", "mallory-grants", mallory),
		// Two ServiceAccounts with mallory's rights.
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bot"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bot2"}},
		saBinding("ClusterRole", "keyward-editor", "bot"),
		saBinding("Role", "mallory-grants", "bot"),
		saBinding("ClusterRole", "keyward-editor", "bot2"),
		saBinding("Role", "mallory-grants", "bot2"),
		role(ns, "mallory-secrets", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "create", "update", "patch", "delete"}}),
		binding(ns, "Role", "mallory-secrets", mallory),
		role(nsX, "mallory-grants", grantRule("api.admin")),
		binding(nsX, "Role", "mallory-grants", mallory),
		binding(ns, "ClusterRole", "keyward-admin", alice),
	)

	inAnHour := metav1.NewTime(time.Now().Add(time.Hour).Truncate(time.Second))
	expiring := metav1.NewTime(time.Now().Add(25 * time.Second).Truncate(time.Second))
	create(st.admin,
		keyGroup(ns, "api", "adv", nil),
		keyGroup(ns, "other", "oth", nil),
		keyGroup(ns, "lim", "lim", func(g *keywardv1alpha1.KeyGroupSpec) {
			g.Limits.MaxApplications, g.Limits.MaxKeysPerApplication = int32p(1), int32p(1)
		}),
		keyGroup(ns, "net", "net", func(g *keywardv1alpha1.KeyGroupSpec) {
			g.AllowedSourceRanges = []keywardv1alpha1.CIDR{"10.0.0.0/8"}
		}),
		keyGroup(ns, "del", "del", nil),
		keyGroup(ns, "mv2", "mvv", nil),
		keyGroup(ns, "kgd", "kgd", nil),
		keyGroup(ns, "rk", "rk", func(g *keywardv1alpha1.KeyGroupSpec) { g.Limits.MaxKeysPerApplication = int32p(1) }),
		keyGroup(ns, "ra", "ra", func(g *keywardv1alpha1.KeyGroupSpec) { g.Limits.MaxApplications = int32p(1) }),
		keyGroup(ns, "eid", "eid", nil),
		keyGroup(ns, "life", "life", func(g *keywardv1alpha1.KeyGroupSpec) {
			g.MaxKeyLifetime = &metav1.Duration{Duration: 720 * time.Hour}
		}),
		keyGroup(nsX, "api", "adv", nil),

		application(ns, "app", "api", "EXT-APP-1"),
		application(ns, "gone", "api", ""),
		application(ns, "used-app", "api", "USED-1"),
		application(ns, "oth-a", "other", ""),
		application(ns, "lim-a", "lim", ""),
		application(ns, "net-a", "net", ""),
		application(ns, "del-a", "del", ""),
		application(ns, "life-a", "life", ""),
		application(ns, "kgd-a", "kgd", ""),
		application(ns, "rk-a", "rk", ""),
		withLabel(application(ns, "used-dc-app", "api", "USED-DC"), "dc-app"),
		application(nsX, "x-app", "api", ""),

		apiKey(ns, "read", "app", "read"),
		apiKey(ns, "root", "app", "root"),
		withKey(apiKey(ns, "ranged", "app", "read"), func(k *keywardv1alpha1.APIKey) {
			k.Spec.AllowedSourceRanges = []keywardv1alpha1.CIDR{"203.0.113.0/24"}
		}),
		apiKey(ns, "revoked", "app", "read"),
		apiKey(ns, "disabled", "app", "read"),
		apiKey(ns, "status-forged", "app", "read"),
		withKey(apiKey(ns, "expiring", "app", "read"), func(k *keywardv1alpha1.APIKey) { k.Spec.ExpiresAt = &expiring }),
		withKey(apiKey(ns, "expires-later", "app", "read"), func(k *keywardv1alpha1.APIKey) { k.Spec.ExpiresAt = &inAnHour }),
		apiKey(ns, "gone-k", "gone", "read"),
		apiKey(ns, "oth-k", "oth-a", "read"),
		apiKey(ns, "lim-k1", "lim-a", "read"),
		apiKey(ns, "used1", "app", "read"),
		apiKey(ns, "used2", "app", "read"),
		apiKey(ns, "used-app-k", "used-app", "read"),
		apiKey(ns, "del-k", "del-a", "read"),
		apiKey(ns, "mc-scopes", "app", "read"),
		apiKey(ns, "kgd-k", "kgd-a", "read"),
		apiKey(ns, "fin-k", "app", "read"),
		withLabel(apiKey(ns, "used-dc", "app", "read"), "dc-key"),
		apiKey(ns, "used-dc-app-k", "used-dc-app", "read"),
		apiKey(ns, "mc-annotation", "app", "read"),
		withKey(apiKey(ns, "mc-expiry", "app", "read"), func(k *keywardv1alpha1.APIKey) { k.Spec.ExpiresAt = &inAnHour }),
		apiKey(ns, "mc-application", "app", "read"),
		apiKey(nsX, "x-read", "x-app", "read"),
	)
	// mallory's own: an Application and a key she may grant.
	create(st.as(mallory),
		application(ns, "m-app", "api", "M-1"),
		apiKey(ns, "m-key", "m-app", "read"),
	)
	for _, k := range []string{"read", "root", "ranged", "revoked", "disabled", "status-forged", "expiring", "expires-later", "gone-k", "oth-k", "lim-k1", "used1", "used2", "used-app-k", "del-k", "m-key", "mc-scopes", "mc-annotation", "mc-expiry", "mc-application", "kgd-k", "fin-k", "used-dc", "used-dc-app-k"} {
		st.keys[ns+"/"+k] = st.waitIssued(t, ns, k)
	}
	st.keys[nsX+"/x-read"] = st.waitIssued(t, nsX, "x-read")

	// States.
	st.patchKey(t, "revoked", func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true })
	st.patchKey(t, "disabled", func(k *keywardv1alpha1.APIKey) { k.Spec.Disabled = true })
	st.patchKey(t, "status-forged", func(k *keywardv1alpha1.APIKey) { k.Spec.Disabled = true })
	gone := &keywardv1alpha1.Application{}
	if err := st.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gone"}, gone); err != nil {
		t.Fatal(err)
	}
	p := client.MergeFrom(gone.DeepCopy())
	gone.Spec.Revoked = true
	if err := st.admin.Patch(ctx, gone, p); err != nil {
		t.Fatal(err)
	}
	// Recent use, as the verifier records it.
	for _, k := range []string{"used1", "used2", "used-app-k", "del-k", "used-dc", "used-dc-app-k"} {
		st.markUsed(t, k)
	}
	st.patchKey(t, "used2", func(k *keywardv1alpha1.APIKey) {
		metav1.SetMetaDataAnnotation(&k.ObjectMeta, keywardv1alpha1.AnnotationConfirmDelete, "not-the-external-id")
	})
	st.waitPhase(t, "revoked", keywardv1alpha1.APIKeyRevoked)
	st.waitPhase(t, "disabled", keywardv1alpha1.APIKeyDisabled)
	st.waitPhase(t, "status-forged", keywardv1alpha1.APIKeyDisabled)
	st.waitPhase(t, "gone-k", keywardv1alpha1.APIKeyRevoked)
}

// saBinding binds a role to the ServiceAccount sa of ns.
func saBinding(kind, name, sa string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: strings.ToLower(kind) + "-" + name + "-sa-" + sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}},
	}
}

// asServiceAccount is a client authenticated as the ServiceAccount name of
// ns with this UID, as its token would be.
func (st *suite) asServiceAccount(t *testing.T, name, uid string) client.Client {
	t.Helper()
	c := rest.CopyConfig(st.env.Config)
	c.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + name, UID: uid,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	cl, err := client.New(c, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// labelProbe selects the objects a collection delete aims at.
const labelProbe = "adversarial.keyward.dev/probe"

func withLabel[T client.Object](o T, value string) T {
	o.SetLabels(map[string]string{labelProbe: value})
	return o
}

func withKey(k *keywardv1alpha1.APIKey, f func(*keywardv1alpha1.APIKey)) *keywardv1alpha1.APIKey {
	f(k)
	return k
}

// waitIssued waits until the key is Ready and returns its plaintext.
func (st *suite) waitIssued(t *testing.T, namespace, name string) string {
	t.Helper()
	k := &keywardv1alpha1.APIKey{}
	testenv.Eventually(t, time.Minute, func() error {
		if err := st.admin.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, k); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(k.Status.Conditions, keywardv1alpha1.ConditionReady) {
			return fmt.Errorf("key %s/%s not Ready: %+v", namespace, name, k.Status)
		}
		return nil
	})
	sec := &corev1.Secret{}
	if err := st.admin.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: k.DeliverySecretName()}, sec); err != nil {
		t.Fatal(err)
	}
	return string(sec.Data[record.DeliveryAPIKey])
}

func (st *suite) waitPhase(t *testing.T, name string, phase keywardv1alpha1.APIKeyPhase) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func() error {
		k := &keywardv1alpha1.APIKey{}
		if err := st.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
			return err
		}
		if k.Status.Phase != phase {
			return fmt.Errorf("key %s/%s is %q, want %q", ns, name, k.Status.Phase, phase)
		}
		return nil
	})
}

// patchKey merge-patches a key of ns as the cluster admin.
func (st *suite) patchKey(t *testing.T, name string, f func(*keywardv1alpha1.APIKey)) {
	t.Helper()
	k := &keywardv1alpha1.APIKey{}
	if err := st.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
		t.Fatal(err)
	}
	p := client.MergeFrom(k.DeepCopy())
	f(k)
	if err := st.admin.Patch(context.Background(), k, p); err != nil {
		t.Fatalf("patching key %s: %v", name, err)
	}
}

// markUsed sets a key's lastUsedTime to now, as the verifier would after
// a request, and waits until it stays.
func (st *suite) markUsed(t *testing.T, name string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		k := &keywardv1alpha1.APIKey{}
		if err := st.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
			return err
		}
		if k.Status.LastUsedTime != nil && time.Since(k.Status.LastUsedTime.Time) < time.Hour {
			return nil
		}
		p := client.MergeFrom(k.DeepCopy())
		now := metav1.Now()
		k.Status.LastUsedTime = &now
		if err := st.admin.Status().Patch(context.Background(), k, p); err != nil {
			return err
		}
		return fmt.Errorf("set lastUsedTime of %s; checking it stays", name)
	})
}

// HTTP: raw requests, so that nothing on the client side normalises
// what a probe sends.

// answer is what a client got.
type answer struct {
	status int
	reason string // X-Auth-Reason, exposed by the nginx configuration
	header http.Header
	body   string
}

func (a answer) String() string {
	return fmt.Sprintf("%d (X-Auth-Reason %q) %s", a.status, a.reason, strings.TrimSpace(a.body))
}

// request is a raw HTTP/1.1 request: its target is sent verbatim.
type request struct {
	method, target, host string
	headers              []string // "Name: value", verbatim
	// http10 sends HTTP/1.0, and no Host header when host is empty.
	http10 bool
}

func get(target string, headers ...string) request {
	return request{method: "GET", target: target, host: host, headers: headers}
}

func bearer(key string) string { return "Authorization: Bearer " + key }

func (r request) text() string {
	var b strings.Builder
	proto := "HTTP/1.1"
	if r.http10 {
		proto = "HTTP/1.0"
	}
	fmt.Fprintf(&b, "%s %s %s\r\n", r.method, r.target, proto)
	if r.host != "" || !r.http10 {
		fmt.Fprintf(&b, "Host: %s\r\n", r.host)
	}
	b.WriteString("Connection: close\r\n")
	for _, h := range r.headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// send sends r to nginx and reads the answer.
func (st *suite) send(t *testing.T, n *e2e.Nginx, r request) answer {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(n.URL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, r.text()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading nginx's answer to %q: %v", r.text(), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, reason: resp.Header.Get("X-Auth-Reason"), header: resp.Header, body: string(body)}
}

// direct asks the verifier of group ns/api itself, as a peer that is not
// a trusted proxy, with these headers (name → lines).
func (st *suite) direct(t *testing.T, headers map[string][]string) answer {
	t.Helper()
	return st.directURL(t, "/v1/verify/"+ns+"/api", headers)
}

// directURL asks the verifier at path (sent as written), as direct does.
func (st *suite) directURL(t *testing.T, path string, headers map[string][]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, st.env.Verifier+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, reason: resp.Header.Get("X-Auth-Reason"), header: resp.Header, body: string(body)}
}

// expect asserts the status and the reason.
func expect(t *testing.T, a answer, status int, reason string) {
	t.Helper()
	if a.status != status || a.reason != reason {
		t.Errorf("got %s, want %d %s", a, status, reason)
	}
}

// eventually401 polls until the answer is 401 with reason, for state that
// reaches the verifier through its informers.
func eventually401(t *testing.T, timeout time.Duration, f func() answer, reason string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		a := f()
		if a.status == http.StatusUnauthorized && a.reason == reason {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("after %s: got %s, want 401 %s", timeout, a, reason)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// refused asserts that err is a refusal whose message holds every want.
func refused(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("accepted; want a refusal naming %q", want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refused, but the message lacks %q: %v", w, err)
		}
	}
}

// sortedKeys is for messages.
func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
