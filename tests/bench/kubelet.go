package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// What kubelet writes into a Node's status, so the API server, the watch
// and the CCM's informer carry objects of a real node's size (about 12 KiB
// in JSON, most of it the image list).

// imagesPerNode is kubelet's default --node-status-max-images.
const imagesPerNode = 50

// imageRepos are images a node of a real cluster holds: system pods,
// CNI, monitoring agents and workloads.
var imageRepos = []struct {
	repo string
	tags []string
	mib  int64
}{
	{"registry.k8s.io/pause", []string{"3.10"}, 1},
	{"registry.k8s.io/kube-proxy", []string{"v1.37.2", "v1.37.1"}, 30},
	{"registry.k8s.io/coredns/coredns", []string{"v1.12.4"}, 21},
	{"registry.k8s.io/metrics-server/metrics-server", []string{"v0.8.0"}, 19},
	{"registry.k8s.io/dns/k8s-dns-node-cache", []string{"1.26.4"}, 35},
	{"registry.k8s.io/sig-storage/csi-node-driver-registrar", []string{"v2.14.0"}, 12},
	{"registry.k8s.io/sig-storage/livenessprobe", []string{"v2.16.0"}, 10},
	{"public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver", []string{"v1.47.0", "v1.46.0"}, 73},
	{"quay.io/cilium/cilium", []string{"v1.18.2", "v1.18.1"}, 210},
	{"quay.io/cilium/operator-aws", []string{"v1.18.2"}, 38},
	{"quay.io/prometheus/node-exporter", []string{"v1.9.1"}, 12},
	{"quay.io/prometheus-operator/prometheus-config-reloader", []string{"v0.85.0"}, 6},
	{"docker.io/grafana/alloy", []string{"v1.10.2"}, 128},
	{"docker.io/fluent/fluent-bit", []string{"4.0.8"}, 32},
	{"docker.io/library/nginx", []string{"1.29.1", "1.29.0", "1.28.0"}, 72},
	{"docker.io/library/redis", []string{"8.2.1", "7.4.5"}, 52},
	{"docker.io/library/postgres", []string{"17.6", "16.10"}, 160},
	{"docker.io/library/python", []string{"3.13-slim", "3.12-slim"}, 45},
	{"docker.io/bitnami/kafka", []string{"4.0.0"}, 220},
	{"ghcr.io/external-secrets/external-secrets", []string{"v0.19.2"}, 29},
	{"ghcr.io/fluxcd/source-controller", []string{"v1.6.2"}, 35},
	{"ghcr.io/fluxcd/kustomize-controller", []string{"v1.6.1"}, 32},
	{"111122223333.dkr.ecr.us-east-1.amazonaws.com/shop/frontend", []string{"2026.11.28-4f1c2ab", "2026.11.27-9be03d1", "2026.11.25-77a0c5e"}, 96},
	{"111122223333.dkr.ecr.us-east-1.amazonaws.com/shop/checkout", []string{"2026.11.29-0c9d3e1", "2026.11.26-a1b2c3d"}, 64},
	{"111122223333.dkr.ecr.us-east-1.amazonaws.com/shop/catalog", []string{"2026.11.29-5e6f7a8", "2026.11.20-1122aab"}, 81},
	{"111122223333.dkr.ecr.us-east-1.amazonaws.com/batch/report-worker", []string{"1.42.0", "1.41.3", "1.41.2"}, 310},
	{"111122223333.dkr.ecr.us-east-1.amazonaws.com/ml/inference", []string{"0.9.14", "0.9.13"}, 1450},
}

// allImages is every repo:tag, in a fixed order.
var allImages = func() []corev1.ContainerImage {
	var out []corev1.ContainerImage
	for _, r := range imageRepos {
		for i, tag := range r.tags {
			sum := sha256.Sum256([]byte(r.repo + ":" + tag))
			digest := r.repo + "@sha256:" + hex.EncodeToString(sum[:])
			size := r.mib<<20 + int64(sum[0])<<12 + int64(i)<<16
			out = append(out, corev1.ContainerImage{Names: []string{digest, r.repo + ":" + tag}, SizeBytes: size})
		}
	}
	return out
}()

// nodeImages returns the 50 images of node i: the system images every
// node holds, and a rotating choice of the others, so nodes differ.
func nodeImages(i int) []corev1.ContainerImage {
	out := make([]corev1.ContainerImage, 0, imagesPerNode)
	for k := 0; len(out) < imagesPerNode; k++ {
		j := k
		if k >= 10 {
			j = 10 + (k-10+i*7)%(len(allImages)-10)
		}
		if k >= len(allImages) {
			// More slots than images: vary the tag of a workload image.
			im := allImages[10+(k+i)%(len(allImages)-10)]
			name := strings.Replace(im.Names[1], ":", ":build-"+fmt.Sprint(k)+"-", 1)
			sum := sha256.Sum256([]byte(name))
			repo, _, _ := strings.Cut(im.Names[1], ":")
			out = append(out, corev1.ContainerImage{Names: []string{repo + "@sha256:" + hex.EncodeToString(sum[:]), name}, SizeBytes: im.SizeBytes})
			continue
		}
		out = append(out, allImages[j])
	}
	return out
}

// kubeletNode is a Node as kubelet with --cloud-provider=external and
// --provider-id registers it and then reports it: the uninitialized taint,
// no addresses, capacity and allocatable of an m5.large, nodeInfo,
// daemonEndpoints, the node's 50 largest images, and the conditions
// (Ready False until the CNI, which needs the podCIDR, is up; or Ready
// True), with heartbeats.
func kubeletNode(in ec2sim.InstanceState, i int, ready bool) *corev1.Node {
	return kubeletNodeWithID(in.PrivateDNSName, providerid.Format(in.Zone, in.ID), in.Zone, i, ready)
}

func kubeletNodeWithID(name, providerID, zone string, i int, ready bool) *corev1.Node {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg,
			LastHeartbeatTime: now, LastTransitionTime: now}
	}
	readyCond := cond(corev1.NodeReady, "KubeletNotReady",
		"container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized")
	if ready {
		readyCond.Status, readyCond.Reason, readyCond.Message = corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"
	}
	qty := resource.MustParse
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: qty("2"), corev1.ResourceMemory: qty("7934444Ki"), corev1.ResourcePods: qty("110"),
		corev1.ResourceEphemeralStorage: qty("83873772Ki"), "hugepages-1Gi": qty("0"), "hugepages-2Mi": qty("0"),
	}
	allocatable := corev1.ResourceList{
		corev1.ResourceCPU: qty("1930m"), corev1.ResourceMemory: qty("7115244Ki"), corev1.ResourcePods: qty("110"),
		corev1.ResourceEphemeralStorage: qty("76224326324"), "hugepages-1Gi": qty("0"), "hugepages-2Mi": qty("0"),
	}
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:16])
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
				"node-role.kubernetes.io/node": "", "kops.k8s.io/instancegroup": "nodes-" + zone,
			},
			Annotations: map[string]string{
				"node.alpha.kubernetes.io/ttl":                           "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
		},
		Spec: corev1.NodeSpec{
			ProviderID: providerID,
			Taints: []corev1.Taint{{
				Key: uninitializedTaint, Value: "true", Effect: corev1.TaintEffectNoSchedule,
			}},
		},
		Status: corev1.NodeStatus{
			Capacity: capacity, Allocatable: allocatable,
			Conditions: []corev1.NodeCondition{
				cond(corev1.NodeMemoryPressure, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
				cond(corev1.NodeDiskPressure, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
				cond(corev1.NodePIDPressure, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
				readyCond,
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
			NodeInfo: corev1.NodeSystemInfo{
				MachineID: id, SystemUUID: "ec2" + id[3:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32],
				BootID:                  hex.EncodeToString(sum[16:20]) + "-" + hex.EncodeToString(sum[20:22]) + "-" + hex.EncodeToString(sum[22:24]) + "-" + hex.EncodeToString(sum[24:26]) + "-" + hex.EncodeToString(sum[26:32]),
				KernelVersion:           "6.12.48-68.118.amzn2023.x86_64",
				OSImage:                 "Amazon Linux 2023.9.20251110",
				ContainerRuntimeVersion: "containerd://2.1.4",
				KubeletVersion:          "v1.37.2",
				OperatingSystem:         "linux",
				Architecture:            "amd64",
			},
			Images: nodeImages(i),
		},
	}
}
