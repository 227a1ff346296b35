package harness

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

func (w *World) startAPIServer(ctx context.Context) error {
	port, err := w.freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(w.Dir, "apiserver")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	priv, pub, err := writeSigningKey(dir)
	if err != nil {
		return err
	}
	token := randomToken()
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",e2e-admin,e2e-admin,system:masters\n"), 0o600); err != nil {
		return err
	}
	w.APIServerURL = w.url("https", port)
	serviceCIDR := "10.96.0.0/16,fd00:10:96::/108"
	if w.opts.IPv6Only {
		serviceCIDR = "fd00:10:96::/108"
	}
	w.logf("starting kube-apiserver on %s", w.APIServerURL)
	args := []string{
		"--etcd-servers=" + w.etcdURL,
		"--bind-address=" + w.host(), "--advertise-address=" + w.host(), "--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + dir,
		"--authorization-mode=RBAC", "--token-auth-file=" + tokens,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pub, "--service-account-signing-key-file=" + priv,
		"--service-cluster-ip-range=" + serviceCIDR,
		"--endpoint-reconciler-type=none",
	}
	if w.opts.DisablePriorityAndFairness {
		args = append(args, "--enable-priority-and-fairness=false",
			"--max-requests-inflight=1000", "--max-mutating-requests-inflight=500")
	} else {
		// APF as in a real cluster: the default FlowSchemas and priority
		// levels, sharing the default 400 + 200 seats.
		args = append(args, "--enable-priority-and-fairness=true")
	}
	p, err := w.start("kube-apiserver", "kube-apiserver", args, nil)
	if err != nil {
		return err
	}
	hdr := http.Header{"Authorization": {"Bearer " + token}}
	if err := waitHTTP(ctx, p, w.APIServerURL+"/readyz", hdr, 90*time.Second); err != nil {
		return err
	}
	w.AdminCfg = &rest.Config{
		Host:            w.APIServerURL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             500, Burst: 1000,
	}
	w.Admin, err = kubernetes.NewForConfig(w.AdminCfg)
	return err
}

// applyRBAC creates the shipped ServiceAccount and RBAC objects.
func (w *World) applyRBAC(ctx context.Context) error {
	objs, err := LoadManifests(filepath.Join(w.Root, "manifests", "base"))
	if err != nil {
		return err
	}
	for _, o := range objs {
		if o.GetKind() == "DaemonSet" || o.GetKind() == "ConfigMap" || o.GetKind() == "Kustomization" {
			continue
		}
		if err := w.Apply(ctx, o, false); err != nil {
			return err
		}
	}
	return nil
}

// serviceAccountKubeconfig mints a token through the TokenRequest API and
// writes a kubeconfig that authenticates with it.
func (w *World) serviceAccountKubeconfig(ctx context.Context, ns, name string) (string, error) {
	tr, err := w.Admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", ns, name, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: w.APIServerURL, InsecureSkipTLSVerify: true}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: name}
	cfg.CurrentContext = "e2e"
	path := filepath.Join(w.Dir, name+".kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

// AdminKubeconfig writes a kubeconfig for the admin and returns its path.
func (w *World) AdminKubeconfig() (string, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: w.APIServerURL, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: w.AdminCfg.BearerToken}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "admin"}
	cfg.CurrentContext = "e2e"
	path := filepath.Join(w.Dir, "admin.kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

// NodeSpec describes a Node to register the way kubelet with
// --cloud-provider=external registers it.
type NodeSpec struct {
	Name       string
	ProviderID string
	// ProvidedNodeIP sets alpha.kubernetes.io/provided-node-ip.
	ProvidedNodeIP string
	// Ready adds a Ready=True condition, as a running kubelet reports.
	Ready bool
}

// CreateNode registers a Node with the uninitialized taint.
func (w *World) CreateNode(ctx context.Context, s NodeSpec) (*corev1.Node, error) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: map[string]string{
			"kubernetes.io/hostname": s.Name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
		}},
		Spec: corev1.NodeSpec{
			ProviderID: s.ProviderID,
			Taints: []corev1.Taint{{
				Key: "node.cloudprovider.kubernetes.io/uninitialized", Value: "true", Effect: corev1.TaintEffectNoSchedule,
			}},
		},
	}
	if s.ProvidedNodeIP != "" {
		n.Annotations = map[string]string{"alpha.kubernetes.io/provided-node-ip": s.ProvidedNodeIP}
	}
	created, err := w.Admin.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil || !s.Ready {
		return created, err
	}
	now := metav1.Now()
	created.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: now, LastTransitionTime: now,
	}}
	return w.Admin.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
}
