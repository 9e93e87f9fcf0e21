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
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/test/testenv"
)

// responderRoles reads the shipped keyward-responder Role and ClusterRole
// from config/rbac/responder_role.yaml.
func responderRoles(t *testing.T) (*rbacv1.Role, *rbacv1.ClusterRole) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.Root, "config", "rbac", "responder_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role *rbacv1.Role
	var clusterRole *rbacv1.ClusterRole
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "Role":
			role = &rbacv1.Role{}
			err = yaml.UnmarshalStrict([]byte(doc), role)
		case "ClusterRole":
			clusterRole = &rbacv1.ClusterRole{}
			err = yaml.UnmarshalStrict([]byte(doc), clusterRole)
		default:
			t.Fatalf("responder_role.yaml holds a %q", meta.Kind)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if role == nil || clusterRole == nil || role.Name != "keyward-responder" || role.Namespace != "keyward-system" || clusterRole.Name != "keyward-responder" {
		t.Fatalf("responder_role.yaml: want the Role keyward-system/keyward-responder and the ClusterRole keyward-responder")
	}
	return role, clusterRole
}

// bindResponder gives user the shipped responder roles, the Role in ops
// (the operator's namespace of this test) and, with cluster, the
// ClusterRole.
func bindResponder(t *testing.T, user, ops string, cluster bool) {
	t.Helper()
	ctx := context.Background()
	role, clusterRole := responderRoles(t)
	role.Namespace = ops
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	if err := env.Client.Create(ctx, role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	create(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ops, Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   subjects,
	})
	testenv.AwaitAllowed(t, env.Client, review(user, ops, role.Rules[0]))
	if !cluster {
		return
	}
	if err := env.Client.Create(ctx, clusterRole); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	create(t, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole.Name},
		Subjects:   subjects,
	})
	t.Cleanup(func() {
		_ = env.Client.Delete(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user}})
	})
	testenv.AwaitAllowed(t, env.Client, review(user, "", clusterRole.Rules[len(clusterRole.Rules)-1]))
}

// review asks whether user may do the first verb of rule on its first
// resource, in namespace ns ("" for the cluster).
func review(user, ns string, rule rbacv1.PolicyRule) *authorizationv1.SubjectAccessReview {
	return &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: []string{"system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: rule.Verbs[0], Group: rule.APIGroups[0], Resource: rule.Resources[0],
		},
	}}
}

// denied checks that r failed as an RBAC refusal naming the permission.
func denied(t *testing.T, r result, verb, resource, where string) {
	t.Helper()
	want := `missing RBAC permission: verb "` + verb + `" on resource "` + resource + `" ` + where
	var d *deniedError
	if !errors.As(r.err, &d) || !strings.Contains(r.err.Error(), want) {
		t.Errorf("want a refusal naming %s, got: %v", want, r.err)
	}
}

// TestRBACDenials: a user without permissions is refused by the API server
// (impersonated, as kubectl --as does), and every command says which
// permission is missing; the shipped keyward-responder roles are enough to
// identify a key and revoke it, not to read a tenant's key.
func TestRBACDenials(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, ns)
	ks := issue(t, ns, "acme-key", "other-key")
	leaked := ks[0].plaintext
	p := newPlugin(t)
	in := func(ns string) string { return `in namespace "` + ns + `"` }

	nobody := "nobody-" + ns
	for _, c := range []struct {
		stdin                 string
		args                  []string
		verb, resource, where string
	}{
		{"", []string{"get-key", "acme-key"}, "get", "apikeys.keyward.dev", in(ns)},
		{"", []string{"rotate", "acme-key"}, "patch", "apikeys.keyward.dev", in(ns)},
		{"", []string{"revoke", "acme-key"}, "patch", "apikeys.keyward.dev", in(ns)},
		{leaked, []string{"identify", "--operator-namespace", ops}, "list", "secrets", in(ops)},
		{leaked, []string{"revoke", "--key", "-", "--operator-namespace", ops}, "list", "secrets", in(ops)},
		{"", []string{"expiring"}, "list", "apikeys.keyward.dev", in(ns)},
		{"", []string{"unused", "-A"}, "list", "apikeys.keyward.dev", "in all namespaces"},
	} {
		r := p.run(c.stdin, append(c.args, "-n", ns, "--as", nobody)...)
		denied(t, r, c.verb, c.resource, c.where)
		noPlaintext(t, r, leaked)
		if r.out != "" {
			t.Errorf("%s printed %q", c.args[0], r.out)
		}
	}
	r := p.run(leaked, "identify", "--operator-namespace", ops, "--as", nobody)
	if !strings.Contains(r.err.Error(), "keyward-responder Role") {
		t.Errorf("the refusal does not name the role that grants the permission: %v", r.err)
	}

	// The Role alone finds the key, but may not read its APIKey: the
	// refusal says whose key it is anyway.
	halfway := "halfway-" + ns
	bindResponder(t, halfway, ops, false)
	r = p.run(leaked, "identify", "--operator-namespace", ops, "--as", halfway)
	denied(t, r, "get", "apikeys.keyward.dev", in(ns))
	if r.err == nil || !strings.Contains(r.err.Error(), "APIKey "+ns+"/acme-key") {
		t.Errorf("identify with the Role alone does not say whose key it is: %v", r.err)
	}

	responder := "responder-" + ns
	bindResponder(t, responder, ops, true)
	r = p.ok(leaked, "identify", "--operator-namespace", ops, "--as", responder)
	if !strings.Contains(r.out, "acme-key") {
		t.Errorf("identify as a responder:\n%s", r.out)
	}
	denied(t, p.run("", "get-key", "acme-key", "-n", ns, "--as", responder), "get", "secrets", in(ns))
	p.ok(leaked, "revoke", "--key", "-", "--operator-namespace", ops, "--as", responder)
	waitPhase(t, ns, "acme-key", keywardv1alpha1.APIKeyRevoked)
}
