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

package kube

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// ControllerManagerControllers are the kube-controller-manager controllers
// the local control plane runs: what a cluster does to keyward's objects
// that no keyward component does. The garbage collector deletes a deleted
// APIKey's delivery Secret (its owner reference); the namespace controller
// finishes deleting namespaces; ClusterRole aggregation gives keyward's
// roles to admin, edit and view.
var ControllerManagerControllers = []string{
	"garbage-collector-controller",
	"namespace-controller",
	"clusterrole-aggregation-controller",
}

// ControllerManager is a kube-controller-manager process.
type ControllerManager struct {
	cmd  *exec.Cmd
	done chan error
}

// StartControllerManager starts kube-controller-manager from assets (the
// directory hack/controlplane.sh builds) against the API server of cfg, an
// administrator's, with only ControllerManagerControllers. Its kubeconfig
// goes to dir; its log to logw. It serves nothing and needs no leader
// election: one runs per local control plane.
func StartControllerManager(cfg *rest.Config, assets, dir string, logw io.Writer) (*ControllerManager, error) {
	bin := filepath.Join(assets, "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("kube-controller-manager is not built in %s: run 'make controlplane'", assets)
	}
	kubeconfig := filepath.Join(dir, "kube-controller-manager.kubeconfig")
	if err := WriteKubeconfig(cfg, kubeconfig); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, //nolint:gosec // the binary hack/controlplane.sh built
		"--kubeconfig="+kubeconfig,
		"--controllers="+strings.Join(ControllerManagerControllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		// Namespaces and garbage go within a second or two, as tests wait.
		"--concurrent-gc-syncs=5",
		"--v=1",
	)
	cmd.Stdout, cmd.Stderr = logw, logw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	m := &ControllerManager{cmd: cmd, done: make(chan error, 1)}
	go func() { m.done <- cmd.Wait() }()
	return m, nil
}

// Stop stops the process and waits for it, at most 10 s.
func (m *ControllerManager) Stop() error {
	if m == nil {
		return nil
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-m.done:
		_ = err // its exit status on SIGTERM says nothing more
		return nil
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		err := <-m.done
		return fmt.Errorf("kube-controller-manager did not stop within 10s; killed (%v)", err)
	}
}

// Wait waits until the process exits or ctx ends, whichever is first.
func (m *ControllerManager) Wait(ctx context.Context) error {
	select {
	case err := <-m.done:
		m.done <- err
		return fmt.Errorf("kube-controller-manager exited: %w", err)
	case <-ctx.Done():
		return nil
	}
}
