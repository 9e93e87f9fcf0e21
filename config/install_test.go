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

package config_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/test/asshipped"
	"github.com/keyward/keyward/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// build runs kustomize (kubectl's) on a directory of config/.
func build(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", filepath.Join(env.Root, "config", dir)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kustomize build config/%s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	objs, err := kube.DecodeYAML(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	opts := []client.PatchOption{client.FieldOwner("install-test"), client.ForceOwnership}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	u = u.DeepCopy()
	u.SetManagedFields(nil)
	return env.Client.Patch(ctx, u, client.Apply, opts...) //nolint:staticcheck // SA1019: unstructured apply is what kubectl apply --server-side does
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// certManagerCRDs installs the two cert-manager kinds the overlay uses. The
// control plane has no cert-manager; these accept any spec, so the dry run
// proves the objects are well-formed and routed, not that cert-manager's
// own schema accepts them.
func certManagerCRDs(t *testing.T) {
	t.Helper()
	for _, kind := range []string{"Certificate", "Issuer"} {
		plural := strings.ToLower(kind) + "s"
		crd := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: plural + ".cert-manager.io"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "cert-manager.io", Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, Plural: plural, ListKind: kind + "List"},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: ptrTrue(),
					}},
				}},
			},
		}
		if err := crdClient(t).Create(context.Background(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		var l unstructured.UnstructuredList
		l.SetAPIVersion("cert-manager.io/v1")
		l.SetKind("CertificateList")
		return env.Client.List(context.Background(), &l)
	})
}

func crdClient(t *testing.T) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptrTrue() *bool { b := true; return &b }

func TestInstallDryRun(t *testing.T) {
	env.Need(t)
	ensureNamespace(t, "keyward-system")
	certManagerCRDs(t)
	// config/networkpolicy is a component: built on top of config/default
	// from a kustomization under bin/ (kustomize takes no absolute bases).
	np := filepath.Join(env.Root, "bin", "kustomize-networkpolicy")
	if err := os.MkdirAll(np, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(np, "kustomization.yaml"),
		[]byte("resources: [../../config/default]\ncomponents: [../../config/networkpolicy]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"default", "certmanager", "../bin/kustomize-networkpolicy"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := build(t, dir)
			kinds := map[string]int{}
			for _, u := range objs {
				kinds[u.GetKind()]++
				if err := apply(context.Background(), u, true); err != nil {
					t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
				}
			}
			for _, want := range []string{"CustomResourceDefinition", "Deployment", "Service", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "PodDisruptionBudget", "ClusterRole"} {
				if kinds[want] == 0 {
					t.Errorf("config/%s has no %s: %v", dir, want, kinds)
				}
			}
			if strings.HasSuffix(dir, "networkpolicy") && kinds["NetworkPolicy"] != 1 {
				t.Errorf("the NetworkPolicy component adds no NetworkPolicy: %v", kinds)
			}
			if dir == "certmanager" && kinds["Certificate"] == 0 {
				t.Errorf("the cert-manager overlay has no Certificate: %v", kinds)
			}
			if kinds["Deployment"] != 2 {
				t.Errorf("want the manager and verifier Deployments, got %v", kinds)
			}
		})
	}
}

// installRBAC applies, for real, the install's namespaces, ServiceAccounts,
// roles and bindings.
func installRBAC(t *testing.T) {
	t.Helper()
	ensureNamespace(t, "keyward-system")
	var objs []*unstructured.Unstructured
	for _, u := range build(t, "default") {
		switch u.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			if err := apply(context.Background(), u, false); err != nil {
				t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
			objs = append(objs, u)
		}
	}
	reviews, err := asshipped.BindingReviews(objs)
	if err != nil {
		t.Fatal(err)
	}
	testenv.AwaitAllowed(t, env.Client, reviews...)
}

func as(t *testing.T, sa string) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:keyward-system:" + sa}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// can asks the API server whether the impersonated user may do something.
func can(t *testing.T, cs kubernetes.Interface, verb, group, resource, subresource, namespace string) bool {
	t.Helper()
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: verb, Group: group, Resource: resource, Subresource: subresource, Namespace: namespace,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.Allowed
}

func TestShippedRBAC(t *testing.T) {
	env.Need(t)
	installRBAC(t)
	tenant := env.Namespace(t)

	t.Run("verifier", func(t *testing.T) {
		v := as(t, "keyward-verifier")
		if _, err := v.CoreV1().Secrets("keyward-system").List(context.Background(), metav1.ListOptions{}); err != nil {
			t.Errorf("the verifier cannot list Secrets in keyward-system: %v", err)
		}
		if _, err := v.CoreV1().Secrets(tenant).List(context.Background(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("the verifier can list Secrets in %s: %v", tenant, err)
		}
		if _, err := v.CoreV1().Secrets("").List(context.Background(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("the verifier can list Secrets cluster-wide: %v", err)
		}
		for _, c := range []struct {
			verb, group, resource, sub, ns string
			want                           bool
		}{
			{"watch", "", "secrets", "", "keyward-system", true},
			{"create", "", "secrets", "", "keyward-system", false},
			{"get", "", "secrets", "", tenant, false},
			{"list", "keyward.dev", "keygroups", "", "", true},
			{"patch", "keyward.dev", "apikeys", "status", tenant, true},
			{"patch", "keyward.dev", "apikeys", "", tenant, false},
			{"create", "keyward.dev", "apikeys", "", tenant, false},
			{"get", "keyward.dev", "apikeys", "", tenant, false},
		} {
			if got := can(t, v, c.verb, c.group, c.resource, c.sub, c.ns); got != c.want {
				t.Errorf("verifier %s %s/%s %s in %q: %v, want %v", c.verb, c.group, c.resource, c.sub, c.ns, got, c.want)
			}
		}
	})

	// kube-controller-manager aggregates keyward's roles into the built-in
	// admin, edit and view, as in a cluster: a namespace admin may grant
	// scopes, an editor may hold keys but not widen them, a viewer reads.
	t.Run("aggregated to admin, edit and view", func(t *testing.T) {
		for _, role := range []string{"admin", "edit", "view"} {
			rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "aggregated-" + role},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "keyward-system", Name: "aggregated-" + role}}}
			if err := env.Client.Create(context.Background(), rb); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			role, verb, resource string
			want                 bool
		}{
			{"admin", "grant", "scopes", true},
			{"admin", "create", "keygroups", true},
			{"edit", "create", "apikeys", true},
			{"edit", "grant", "scopes", false},
			{"edit", "create", "keygroups", false},
			{"view", "list", "apikeys", true},
			{"view", "create", "apikeys", false},
		} {
			u := as(t, "aggregated-"+c.role)
			testenv.Eventually(t, 30*time.Second, func() error {
				if got := can(t, u, c.verb, "keyward.dev", c.resource, "", tenant); got != c.want {
					return fmt.Errorf("%s: %s keyward.dev/%s: %v, want %v (aggregation not done yet?)", c.role, c.verb, c.resource, got, c.want)
				}
				return nil
			})
		}
	})

	t.Run("manager", func(t *testing.T) {
		m := as(t, "keyward-manager")
		for _, c := range []struct {
			verb, group, resource, sub, ns string
			want                           bool
		}{
			{"create", "", "secrets", "", tenant, true},           // delivery Secrets
			{"get", "", "secrets", "", tenant, true},              // reading a delivery Secret back
			{"update", "", "secrets", "", tenant, true},           // a rotation rewrites the delivery Secret in place
			{"delete", "", "secrets", "", tenant, true},           // replacing an immutable delivery Secret
			{"patch", "", "secrets", "", "keyward-system", true},  // hashed Secrets
			{"delete", "", "secrets", "", "keyward-system", true}, // finalizer
			{"watch", "", "secrets", "", "keyward-system", true},  // its cache of hashed Secrets
			{"list", "", "secrets", "", tenant, false},            // never lists tenants' Secrets
			{"watch", "", "secrets", "", "", false},
			{"patch", "", "secrets", "", tenant, false},
			{"patch", "keyward.dev", "apikeys", "status", tenant, true}, // status
			{"update", "keyward.dev", "apikeys", "finalizers", tenant, true},
			{"create", "authorization.k8s.io", "subjectaccessreviews", "", "", true},
			{"create", "coordination.k8s.io", "leases", "", "keyward-system", true},
			{"update", "keyward.dev", "apikeys", "", tenant, false},
			{"create", "keyward.dev", "apikeys", "", tenant, false},
			{"delete", "keyward.dev", "keygroups", "", tenant, false},
			{"create", "", "pods", "", tenant, false},
			{"get", "", "nodes", "", "", false},
			{"delete", "", "namespaces", "", "", false},
			{"update", "apiextensions.k8s.io", "customresourcedefinitions", "", "", false},
			{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", false},
		} {
			if got := can(t, m, c.verb, c.group, c.resource, c.sub, c.ns); got != c.want {
				t.Errorf("manager %s %s/%s %s in %q: %v, want %v", c.verb, c.group, c.resource, c.sub, c.ns, got, c.want)
			}
		}
		// What the manager may do, for the record.
		rules, err := m.AuthorizationV1().SelfSubjectRulesReviews().Create(context.Background(), &authorizationv1.SelfSubjectRulesReview{
			Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "keyward-system"},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, r := range rules.Status.ResourceRules {
			if len(r.APIGroups) == 1 && r.APIGroups[0] == "authorization.k8s.io" && strings.HasPrefix(r.Resources[0], "self") {
				continue // every user may ask about itself
			}
			lines = append(lines, fmt.Sprintf("%v %v %v", r.APIGroups, r.Resources, r.Verbs))
		}
		sort.Strings(lines)
		t.Logf("the manager's permissions in keyward-system:\n  %s", strings.Join(lines, "\n  "))
	})
}
