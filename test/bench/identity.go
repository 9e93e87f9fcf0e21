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
	"fmt"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward/keyward/internal/kube"
)

// managerAccount is the ServiceAccount the bench's manager runs as, named
// as the shipped install names it.
const managerAccount = "keyward-manager"

// The kinds of the manager's roles.
const (
	kindClusterRole = "ClusterRole"
	kindRole        = "Role"
)

// managerConfig is the manager's connection as in a cluster: a token of
// the ServiceAccount keyward-manager in the operator namespace, from the
// TokenRequest API, authorised by the roles shipped for it
// (config/rbac/role.yaml and the leader election's in
// config/manager/manager.yaml, its Roles moved into the operator
// namespace).
// The control plane's admin, which the bench's own clients use, would
// skip both: a client certificate in system:masters is never put through
// RBAC. The account, its roles and its token are made once per control
// plane.
func (b *bench) managerConfig(ctx context.Context) (*rest.Config, error) {
	c := b.cluster
	if c.managerCfg != nil {
		return c.managerCfg, nil
	}
	var roles []*unstructured.Unstructured
	for _, path := range []string{"config/rbac/role.yaml", "config/manager/manager.yaml"} {
		rs, err := managerRoles(filepath.Join(b.root, filepath.FromSlash(path)))
		if err != nil {
			return nil, err
		}
		roles = append(roles, rs...)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: managerAccount, Namespace: ctrlOps}}
	objs := []client.Object{&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ctrlOps, Name: managerAccount}}}
	for _, r := range roles {
		switch r.GetKind() {
		case kindClusterRole:
			objs = append(objs, r, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: r.GetName()},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kindClusterRole, Name: r.GetName()},
				Subjects:   subject,
			})
		case kindRole:
			r.SetNamespace(ctrlOps)
			objs = append(objs, r, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ctrlOps, Name: r.GetName()},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kindRole, Name: r.GetName()},
				Subjects:   subject,
			})
		}
	}
	for _, o := range objs {
		if err := c.client.Create(ctx, o); err != nil {
			return nil, fmt.Errorf("%T %s: %w", o, o.GetName(), err)
		}
	}
	tr, err := c.clientset.CoreV1().ServiceAccounts(ctrlOps).CreateToken(ctx, managerAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](6 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("a token of ServiceAccount %s/%s: %w", ctrlOps, managerAccount, err)
	}
	cfg := &rest.Config{
		Host:            c.cfg.Host,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.cfg.CAData, CAFile: c.cfg.CAFile, ServerName: c.cfg.ServerName},
		BearerToken:     tr.Status.Token,
		QPS:             c.cfg.QPS,
		Burst:           c.cfg.Burst,
	}
	c.managerCfg = cfg
	return cfg, nil
}

// managerRoles reads the ClusterRoles and Roles in path, a YAML stream.
func managerRoles(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- the repository's own file
	if err != nil {
		return nil, err
	}
	objs, err := kube.DecodeYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var roles []*unstructured.Unstructured
	for _, u := range objs {
		if k := u.GetKind(); k == kindClusterRole || k == kindRole {
			roles = append(roles, u)
		}
	}
	if len(roles) == 0 {
		return nil, fmt.Errorf("%s holds no roles", path)
	}
	return roles, nil
}
