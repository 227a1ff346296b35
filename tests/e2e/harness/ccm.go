package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

// CCMOptions adjust how a CCM replica is started.
type CCMOptions struct {
	// CloudConfig replaces the shipped ConfigMap's cloud.conf when non-empty.
	CloudConfig string
	// ExtraArgs are appended after the DaemonSet's args (a later flag wins).
	ExtraArgs []string
	// Env is added to ec2sim's environment.
	Env []string
}

var ccmSeq atomic.Int32

// CCM is a running CCM replica.
type CCM struct {
	*Proc
	// HealthURL is the replica's /healthz on its secure port.
	HealthURL string
	// MetricsURL is its /metrics.
	MetricsURL string
}

// StartCCM starts the CCM binary with the shipped DaemonSet's args, the
// ServiceAccount kubeconfig and ec2sim's endpoints, and waits for /healthz.
func (w *World) StartCCM(ctx context.Context, o CCMOptions) (*CCM, error) {
	ds, err := w.DaemonSet()
	if err != nil {
		return nil, err
	}
	if len(ds.Spec.Template.Spec.Containers) == 0 {
		return nil, fmt.Errorf("DaemonSet %s has no containers", ds.Name)
	}
	cc := o.CloudConfig
	if cc == "" {
		if cc, err = w.ShippedCloudConfig(); err != nil {
			return nil, err
		}
	}
	n := ccmSeq.Add(1)
	name := "ccm-" + strconv.Itoa(int(n))
	ccPath := filepath.Join(w.Dir, name+".conf")
	if err := os.WriteFile(ccPath, []byte(cc), 0o644); err != nil {
		return nil, err
	}
	port, err := w.freePort()
	if err != nil {
		return nil, err
	}
	// The DaemonSet's args, with paths and ports that fit this machine.
	override := map[string]string{
		"--cloud-config": ccPath,
		"--secure-port":  strconv.Itoa(port),
	}
	var args []string
	for _, a := range ds.Spec.Template.Spec.Containers[0].Args {
		if v, ok := override[flagName(a)]; ok {
			args = append(args, flagName(a)+"="+v)
			delete(override, flagName(a))
			continue
		}
		args = append(args, a)
	}
	for k, v := range override {
		args = append(args, k+"="+v)
	}
	args = append(args,
		"--kubeconfig="+w.CCMKubeconfig,
		"--authentication-kubeconfig="+w.CCMKubeconfig,
		"--authorization-kubeconfig="+w.CCMKubeconfig,
		"--bind-address="+w.host(),
		"--cert-dir="+filepath.Join(w.Dir, name+"-certs"),
	)
	args = append(args, o.ExtraArgs...)
	env := append(w.ccmEnv(), o.Env...)
	w.logf("starting %s: aws-cloud-controller-manager %v", name, args)
	p, err := w.start(name, "aws-cloud-controller-manager", args, env)
	if err != nil {
		return nil, err
	}
	c := &CCM{Proc: p,
		HealthURL:  w.url("https", port) + "/healthz",
		MetricsURL: w.url("https", port) + "/metrics",
	}
	if err := waitHTTP(ctx, p, c.HealthURL, nil, 60*time.Second); err != nil {
		return nil, err
	}
	return c, nil
}

// ccmEnv is the CCM's AWS environment: ec2sim's endpoints and static keys,
// or, in an IPv6-only world, the EC2 URL alone, with every variable that
// could give credentials or an IMDS endpoint emptied (the SDK treats an
// empty variable as unset), so that credentials come from IMDS.
func (w *World) ccmEnv() []string {
	if !w.opts.IPv6Only {
		return append([]string{}, w.Sim.Env()...)
	}
	env := []string{"AWS_ENDPOINT_URL_EC2=" + w.Sim.Endpoint()}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_USE_DUALSTACK_ENDPOINT",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		env = append(env, k+"=")
	}
	return env
}
