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
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/test/testenv"
)

// stepTimeout bounds each step's wait for its evidence.
const stepTimeout = 90 * time.Second

// serviceAccountPrefix is the user name prefix of keyward's components.
const serviceAccountPrefix = "system:serviceaccount:" + operatorNamespace + ":"

// install is one rendering of the shipped manifests, run as shipped.
type install struct {
	t       *testing.T
	objs    []*unstructured.Unstructured
	kubelet *Kubelet
	admin   kubernetes.Interface

	pods     []*Pod
	tenant   string
	key      string // the sample key's plaintext
	verifyAt string // the sample KeyGroup's verify URL, resolved to the verifier's endpoint
	// auditFrom is how many audit events came before this install.
	auditFrom int
}

type step struct {
	name string
	run  func(context.Context) error
}

// The steps of the README's scenario, in order.
const (
	stepInstall     = "install everything but the Deployments"
	stepStart       = "start the manager's and the verifier's pods"
	stepCerts       = "webhook certificates issued and injected"
	stepReady       = "pods ready, endpoints written"
	stepSamples     = "samples applied through the webhooks"
	stepIssued      = "key issued"
	stepVerified    = "key verified by the verifier, as ingress-nginx asks"
	stepLastUse     = "last use written by the verifier"
	stepRotated     = "key rotated: the new one delivered, both working"
	stepRevoked     = "key revoked: 401 after"
	stepWebhook     = "an invalid APIKey refused by the validating webhook"
	stepCredentials = "each component authenticated as its own ServiceAccount, never refused"
)

func (in *install) steps() []step {
	return []step{
		{stepInstall, in.install},
		{stepStart, in.start},
		{stepCerts, in.certs},
		{stepReady, in.ready},
		{stepSamples, in.samples},
		{stepIssued, in.issued},
		{stepVerified, in.verified},
		{stepLastUse, in.lastUse},
		{stepRotated, in.rotated},
		{stepRevoked, in.revoked},
		{stepWebhook, in.webhookRefuses},
		{stepCredentials, in.credentials},
	}
}

// scenario runs the steps in order and returns the first that failed.
func (in *install) scenario(ctx context.Context) (string, error) {
	defer in.stop()
	for _, s := range in.steps() {
		in.t.Logf("step: %s", s.name)
		if err := s.run(ctx); err != nil {
			for _, p := range in.pods {
				in.t.Logf("%s log:\n%s", p.Name, tail(p.Log.String(), 40))
			}
			return s.name, err
		}
	}
	return "", nil
}

func newInstall(t *testing.T, objs []*unstructured.Unstructured, dev *Deviations) *install {
	t.Helper()
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	k := &Kubelet{APIServer: u.Host, CA: env.Config.CAData, Entrypoint: buildKeyward(t), Admin: admin, Deviations: dev}
	if os.Getenv("KEYWARD_TEST_LOGS") != "" {
		k.Logs = os.Stderr
	}
	return &install{t: t, objs: objs, kubelet: k, admin: admin}
}

// await polls cond until it holds, and gives up early with the evidence
// when a pod has exited or the API server refused one of keyward's
// components a request since the install began.
func (in *install) await(ctx context.Context, what string, cond func() error) error {
	deadline := time.Now().Add(stepTimeout)
	for {
		err := cond()
		var f final
		switch {
		case err == nil:
			return nil
		case errors.As(err, &f):
			return fmt.Errorf("%s: %w", what, f.error)
		}
		if r := in.refused(); len(r) > 0 {
			return fmt.Errorf("%s: the API server refused %s (audit log); last: %w", what, r[0], err)
		}
		for _, p := range in.pods {
			if perr := p.Exited(); perr != nil {
				return fmt.Errorf("%s: %w; log:\n%s", what, perr, tail(p.Log.String(), 20))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: after %s: %w", what, stepTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// final is an error that no later try can change: await returns it.
type final struct{ error }

func (in *install) audit() []auditEvent {
	events, err := readAudit(auditLog)
	if err != nil || len(events) < in.auditFrom {
		return nil
	}
	return events[in.auditFrom:]
}

func (in *install) refused() []auditEvent { return refused(in.audit(), serviceAccountPrefix) }

// install applies the rendering, all but the Deployments, to an operator
// namespace as fresh as a new cluster's.
func (in *install) install(ctx context.Context) error {
	events, _ := readAudit(auditLog)
	in.auditFrom = len(events)
	// The previous install's state goes with its namespace (the namespace
	// controller of kube-controller-manager empties it).
	for _, wc := range []client.Object{
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "keyward-validating-webhook-configuration"}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "keyward-mutating-webhook-configuration"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}},
	} {
		if err := env.Client.Delete(ctx, wc); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if err := in.await(ctx, "the previous operator namespace deleted", func() error {
		err := env.Client.Get(ctx, client.ObjectKey{Name: operatorNamespace}, &corev1.Namespace{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("namespace %s still there: %v", operatorNamespace, err)
	}); err != nil {
		return err
	}
	// As helm install --create-namespace does, when the rendering has no
	// Namespace.
	err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, u := range in.objs {
		if u.GetKind() == "Deployment" {
			continue
		}
		if err := apply(ctx, u); err != nil {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	// The pods start once the API server's authorizer has every binding, as
	// they would minutes later in a cluster: a refusal is then the roles'.
	reviews, err := BindingReviews(in.objs)
	if err != nil {
		return err
	}
	for _, r := range reviews {
		if err := in.await(ctx, "RBAC in effect", func() error {
			ok, err := testenv.Allowed(ctx, env.Client, r)
			if err == nil && !ok {
				err = fmt.Errorf("%s may not %s %s yet", r.Spec.User, r.Spec.ResourceAttributes.Verb, r.Spec.ResourceAttributes.Resource)
			}
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, u *unstructured.Unstructured) error {
	u = u.DeepCopy()
	u.SetManagedFields(nil)
	if namespaced, err := env.Client.IsObjectNamespaced(u); err == nil && namespaced && u.GetNamespace() == "" {
		// What helm install does with the release's namespace.
		u.SetNamespace(operatorNamespace)
	}
	//nolint:staticcheck // SA1019: unstructured apply is what kubectl apply --server-side does
	return env.Client.Patch(ctx, u, client.Apply, client.FieldOwner("kubectl"), client.ForceOwnership)
}

// deployments returns the rendering's Deployments.
func (in *install) deployments() ([]*appsv1.Deployment, error) {
	var ds []*appsv1.Deployment
	for _, u := range in.objs {
		if u.GetKind() != "Deployment" {
			continue
		}
		if u.GetNamespace() == "" {
			u = u.DeepCopy()
			u.SetNamespace(operatorNamespace)
		}
		d := &appsv1.Deployment{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	if len(ds) != 2 {
		return nil, fmt.Errorf("want the manager's and the verifier's Deployments, got %d", len(ds))
	}
	return ds, nil
}

func (in *install) start(ctx context.Context) error {
	ds, err := in.deployments()
	if err != nil {
		return err
	}
	for _, d := range ds {
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		if replicas != 1 {
			in.kubelet.Deviations.Add("%s: one replica runs, not %d: no scheduler, so topologySpreadConstraints and the PodDisruptionBudget are not exercised", d.Name, replicas)
		}
		describe(d, in.kubelet.Deviations)
		p, err := in.kubelet.Run(ctx, d)
		if err != nil {
			return err
		}
		in.pods = append(in.pods, p)
		in.t.Logf("%s: pod %s at %s runs /keyward %s", d.Name, p.Name, p.IP, strings.Join(p.Args, " "))
	}
	return nil
}

func (in *install) stop() {
	for _, p := range in.pods {
		p.Stop()
	}
}

// ready waits for each pod's readiness probe, then writes the EndpointSlice
// of each Service that selects it.
func (in *install) ready(ctx context.Context) error {
	for _, p := range in.pods {
		if err := in.await(ctx, p.Name+" ready", func() error { return p.Ready(ctx) }); err != nil {
			return err
		}
		var svcs corev1.ServiceList
		if err := env.Client.List(ctx, &svcs, client.InNamespace(p.Deployment.Namespace)); err != nil {
			return err
		}
		for i := range svcs.Items {
			es, err := p.EndpointSlice(&svcs.Items[i])
			if err != nil {
				return err
			}
			if es == nil {
				continue
			}
			if err := env.Client.Create(ctx, es); err != nil {
				return fmt.Errorf("EndpointSlice of %s: %w", svcs.Items[i].Name, err)
			}
		}
	}
	return nil
}

// certs waits until the manager has filled its certificate Secret and put
// its CA into every webhook of both configurations.
func (in *install) certs(ctx context.Context) error {
	return in.await(ctx, "caBundle injected", func() error {
		var s corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "keyward-webhook-cert"}, &s); err != nil {
			return err
		}
		ca := s.Data["ca.crt"]
		if len(ca) == 0 || len(s.Data["tls.crt"]) == 0 {
			return errors.New("the certificate Secret is not filled yet")
		}
		var bundles [][]byte
		v, err := in.admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "keyward-validating-webhook-configuration", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, w := range v.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
		m, err := in.admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "keyward-mutating-webhook-configuration", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, w := range m.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
		for i, b := range bundles {
			if !bytes.Equal(b, ca) {
				return fmt.Errorf("webhook %d of %d has not the CA of keyward-webhook-cert yet", i+1, len(bundles))
			}
		}
		return nil
	})
}

// samples applies config/samples (kubectl apply -k --server-side) in a
// tenant's namespace, through both webhooks.
func (in *install) samples(ctx context.Context) error {
	in.tenant = env.Namespace(in.t)
	objs, err := Kustomize(filepath.Join(env.Root, "config", "samples"))
	if err != nil {
		return err
	}
	for _, u := range objs {
		u.SetNamespace(in.tenant)
		if err := in.await(ctx, "applying "+u.GetKind()+" "+u.GetName(), func() error {
			err := apply(ctx, u)
			if strings.Contains(fmt.Sprint(err), "denied the request") {
				return final{err} // admitted never; else the webhook is not reached yet
			}
			return err
		}); err != nil {
			return err
		}
	}
	var k keywardv1alpha1.APIKey
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: in.tenant, Name: "acme-dashboard-downlinks"}, &k); err != nil {
		return err
	}
	if k.Annotations[keywardv1alpha1.AnnotationCreatedBy] == "" {
		return fmt.Errorf("the mutating webhook did not set %s", keywardv1alpha1.AnnotationCreatedBy)
	}
	return nil
}

// issued waits for the sample key to be Active and its plaintext delivered.
func (in *install) issued(ctx context.Context) error {
	return in.await(ctx, "acme-dashboard-downlinks Active", func() error {
		var k keywardv1alpha1.APIKey
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: in.tenant, Name: "acme-dashboard-downlinks"}, &k); err != nil {
			return err
		}
		if k.Status.Phase != keywardv1alpha1.APIKeyActive || k.Status.KeyID == "" {
			return fmt.Errorf("phase %q, conditions %v", k.Status.Phase, k.Status.Conditions)
		}
		var s corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: in.tenant, Name: "acme-dashboard-downlinks-key"}, &s); err != nil {
			return err
		}
		in.key = string(s.Data["api-key"])
		if !strings.HasPrefix(in.key, k.Status.KeyID) {
			return errors.New("the delivery Secret holds no key of this key ID")
		}
		return nil
	})
}

// verified asks the verifier at the KeyGroup's verifyURL, its Service
// resolved to its endpoint (as ingress-nginx does), for the request a key
// with device-downlinks may make.
func (in *install) verified(ctx context.Context) error {
	var g keywardv1alpha1.KeyGroup
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: in.tenant, Name: "devices"}, &g); err != nil {
		return err
	}
	u, err := in.resolve(ctx, g.Status.VerifyURL)
	if err != nil {
		return err
	}
	in.verifyAt = u
	return in.await(ctx, "200 from the verifier", func() error {
		return expectAnswer(ctx, in.verifyAt, in.key, http.StatusOK, "")
	})
}

// resolve turns http://<service>.<namespace>.svc/path into the address of
// the Service's endpoint for its port, as cluster DNS and the ingress
// controller would.
func (in *install) resolve(ctx context.Context, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return "", fmt.Errorf("verifyURL %q: want http://<service>.<namespace>.svc/<path>", raw)
	}
	parts := strings.Split(u.Hostname(), ".")
	if len(parts) != 3 || parts[2] != "svc" {
		return "", fmt.Errorf("verifyURL %q: want http://<service>.<namespace>.svc/<path>", raw)
	}
	var svc corev1.Service
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: parts[1], Name: parts[0]}, &svc); err != nil {
		return "", fmt.Errorf("verifyURL %q: %w", raw, err)
	}
	port := int32(80)
	if u.Port() != "" {
		_, _ = fmt.Sscan(u.Port(), &port)
	}
	var name string
	for _, p := range svc.Spec.Ports {
		if p.Port == port {
			name = p.Name
		}
	}
	var slices discoveryv1.EndpointSliceList
	if err := env.Client.List(ctx, &slices, client.InNamespace(svc.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
		return "", err
	}
	for _, es := range slices.Items {
		for _, p := range es.Ports {
			if p.Name != nil && *p.Name == name && p.Port != nil && len(es.Endpoints) > 0 {
				u.Host = fmt.Sprintf("%s:%d", es.Endpoints[0].Addresses[0], *p.Port)
				return u.String(), nil
			}
		}
	}
	return "", fmt.Errorf("verifyURL %q: Service %s/%s has no endpoint for port %d", raw, svc.Namespace, svc.Name, port)
}

// expectAnswer makes the auth subrequest ingress-nginx makes for
// POST /integration/device/sendmsg.
func expectAnswer(ctx context.Context, verifyAt, key string, code int, reason string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, verifyAt, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Original-URL", "https://devices.example.com/integration/device/sendmsg")
	req.Header.Set("X-Original-Method", http.MethodPost)
	req.Header.Set("X-Sent-From", "nginx-ingress-controller")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := direct.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != code || resp.Header.Get("X-Auth-Reason") != reason {
		return fmt.Errorf("%s answered %s (reason %q), want %d (reason %q)", verifyAt, resp.Status, resp.Header.Get("X-Auth-Reason"), code, reason)
	}
	if code == http.StatusOK && resp.Header.Get("X-Auth-Application") != "acme-dashboard" {
		return fmt.Errorf("200 with X-Auth-Application %q", resp.Header.Get("X-Auth-Application"))
	}
	return nil
}

// lastUse waits for the verifier's write of status.lastUsedTime.
func (in *install) lastUse(ctx context.Context) error {
	return in.await(ctx, "status.lastUsedTime written", func() error {
		var k keywardv1alpha1.APIKey
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: in.tenant, Name: "acme-dashboard-downlinks"}, &k); err != nil {
			return err
		}
		if k.Status.LastUsedTime == nil {
			return errors.New("status.lastUsedTime not set")
		}
		return nil
	})
}

// rotated asks for a rotation as kubectl keyward rotate does and waits for
// the successor in the delivery Secret (rewritten in place by the manager)
// to verify, the previous key working through its overlap.
func (in *install) rotated(ctx context.Context) error {
	k := &keywardv1alpha1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: in.tenant, Name: "acme-dashboard-downlinks"}}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"as-shipped"}}}`, keywardv1alpha1.AnnotationRotate)
	if err := env.Client.Patch(ctx, k, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		return err
	}
	previous := in.key
	err := in.await(ctx, "the successor delivered and verified", func() error {
		var s corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: in.tenant, Name: "acme-dashboard-downlinks-key"}, &s); err != nil {
			return err
		}
		next := string(s.Data["api-key"])
		if next == previous || len(s.Data["api-key-next"]) > 0 {
			return errors.New("api-key not rotated yet")
		}
		if err := expectAnswer(ctx, in.verifyAt, next, http.StatusOK, ""); err != nil {
			return err
		}
		in.key = next
		return nil
	})
	if err != nil {
		return err
	}
	return expectAnswer(ctx, in.verifyAt, previous, http.StatusOK, "")
}

// revoked revokes the key and waits for the verifier to refuse it.
func (in *install) revoked(ctx context.Context) error {
	k := &keywardv1alpha1.APIKey{ObjectMeta: metav1.ObjectMeta{Namespace: in.tenant, Name: "acme-dashboard-downlinks"}}
	if err := env.Client.Patch(ctx, k, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"revoked":true}}`))); err != nil {
		return err
	}
	return in.await(ctx, "401 revoked from the verifier", func() error {
		return expectAnswer(ctx, in.verifyAt, in.key, http.StatusUnauthorized, "revoked")
	})
}

// webhookRefuses creates an APIKey with a scope its group lacks: the
// validating webhook, reached through the webhook Service, refuses it.
func (in *install) webhookRefuses(ctx context.Context) error {
	k := &keywardv1alpha1.APIKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: in.tenant, Name: "no-such-scope"},
		Spec:       keywardv1alpha1.APIKeySpec{Application: "acme-dashboard", Scopes: []keywardv1alpha1.ScopeName{"no-such-scope"}},
	}
	err := env.Client.Create(ctx, k)
	const want = `admission webhook "vapikey.keyward.dev" denied the request`
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "spec.scopes") {
		return fmt.Errorf("creating an APIKey with an unknown scope: %v; want %s naming spec.scopes", err, want)
	}
	in.t.Logf("refused as expected: %v", err)
	return nil
}

// credentials checks, in the audit log, that the manager and the verifier
// called the API server with their ServiceAccounts' tokens and were never
// refused.
func (in *install) credentials(context.Context) error {
	events := in.audit()
	for _, sa := range []string{"keyward-manager", "keyward-verifier"} {
		n := 0
		for _, e := range events {
			if e.User.Username == serviceAccountPrefix+sa && len(e.User.Extra["authentication.kubernetes.io/credential-id"]) > 0 {
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("no request of %s authenticated with a ServiceAccount token", sa)
		}
		in.t.Logf("%s: %d requests authenticated with its ServiceAccount token", sa, n)
	}
	if r := refused(events, serviceAccountPrefix); len(r) > 0 {
		return fmt.Errorf("the API server refused %d requests, the first %s", len(r), r[0])
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// source is one way the install is shipped.
type source struct {
	name   string
	render func(t *testing.T) []*unstructured.Unstructured
}

// sources are config/default and, once it exists, the Helm chart with its
// default values.
func sources(t *testing.T) []source {
	t.Helper()
	srcs := []source{{"config/default", func(t *testing.T) []*unstructured.Unstructured {
		t.Helper()
		objs, err := Kustomize(filepath.Join(env.Root, "config", "default"))
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}}}
	chart := filepath.Join(env.Root, "charts", "keyward")
	if _, err := os.Stat(filepath.Join(chart, "Chart.yaml")); err != nil {
		return srcs
	}
	return append(srcs, source{"charts/keyward", func(t *testing.T) []*unstructured.Unstructured {
		t.Helper()
		objs, err := HelmTemplate(helm(t), chart, "keyward", operatorNamespace)
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}})
}

// helm returns the Helm that hack/helm.sh builds (make helm), building it
// when missing unless the test may skip.
func helm(t *testing.T) string {
	t.Helper()
	script := filepath.Join(env.Root, "hack", "helm.sh")
	out, err := exec.Command(script, "--print").Output()
	if err != nil {
		t.Fatalf("%s --print: %v", script, err)
	}
	p := strings.TrimSpace(string(out))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if testenv.SkipsEndToEnd() {
		t.Skipf("helm not built: run 'make helm'")
	}
	if out, err := exec.Command(script).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return p
}

func logDeviations(t *testing.T, dev *Deviations) {
	t.Helper()
	t.Logf("deviations from the Deployments:\n  - %s", strings.Join(dev.List(), "\n  - "))
}

// TestAsShipped runs the manager and the verifier as the Deployments of
// config/default (and of the chart) say, and the README's scenario
// against them.
func TestAsShipped(t *testing.T) {
	env.Need(t)
	needHost(t)
	for _, src := range sources(t) {
		t.Run(src.name, func(t *testing.T) {
			dev := &Deviations{}
			defer logDeviations(t, dev)
			in := newInstall(t, src.render(t), dev)
			if step, err := in.scenario(context.Background()); err != nil {
				t.Fatalf("step %q: %v", step, err)
			}
		})
	}
}

// TestRuleRemoved takes one rule away from a shipped role: the scenario
// must fail at the step that needs it, refused by the API server.
func TestRuleRemoved(t *testing.T) {
	env.Need(t)
	needHost(t)
	for _, c := range []struct {
		rule Rule
		step string
	}{
		{Rule{Kind: "ClusterRole", Name: "keyward-verifier", APIGroup: "keyward.dev", Resource: "apikeys/status", Verb: "patch"}, stepLastUse},
		// A rotation rewrites the delivery Secret in place.
		{Rule{Kind: "ClusterRole", Name: "keyward-manager", APIGroup: "", Resource: "secrets", Verb: "update"}, stepRotated},
		// The manager injects its CA into the webhook configurations.
		// The manager creates the Secret of its webhook certificate.
		{Rule{Kind: "ClusterRole", Name: "keyward-manager", APIGroup: "", Resource: "secrets", Verb: "create"}, stepCerts},
		{Rule{Kind: "ClusterRole", Name: "keyward-manager", APIGroup: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Verb: "update"}, stepCerts},
	} {
		t.Run(c.rule.Name+" "+c.rule.Verb+" "+c.rule.Resource, func(t *testing.T) {
			objs, err := Without(sources(t)[0].render(t), c.rule)
			if err != nil {
				t.Fatal(err)
			}
			in := newInstall(t, objs, &Deviations{})
			step, err := in.scenario(context.Background())
			if step != c.step || err == nil || !strings.Contains(err.Error(), "the API server refused") {
				t.Fatalf("without %s: failed at %q (%v), want at %q refused by the API server", c.rule, step, err, c.step)
			}
			t.Logf("without %s the scenario fails at %q, as it should: %v", c.rule, step, err)
		})
	}
}
