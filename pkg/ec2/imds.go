package ec2

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"k8s.io/klog/v2"
)

// IMDS endpoint modes, as AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE spells them.
const (
	IMDSEndpointModeIPv4 = "IPv4"
	IMDSEndpointModeIPv6 = "IPv6"
)

// Metadata is what the CCM learns about its own instance from IMDSv2.
type Metadata struct {
	InstanceID string
	Region     string
	Zone       string
	ZoneID     string
	VPCID      string
	MAC        string
}

// GetMetadata reads the local instance's identity from IMDSv2, reaching IMDS
// as a says (mode, endpoint override, then the SDK's environment), exactly
// as the credential chain of LoadAWSConfig does. Instance ID, zone and
// region are required; zone ID, MAC and VPC are read when IMDS has them.
// Errors name the endpoint tried, its address family and the setting that
// chose it.
func GetMetadata(ctx context.Context, a Access) (*Metadata, error) {
	cfg, err := LoadAWSConfig(ctx, a)
	if err != nil {
		return nil, err
	}
	md, err := getMetadata(ctx, imds.NewFromConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("instance metadata at %s: %w", a.IMDSTarget(), err)
	}
	return md, nil
}

func getMetadata(ctx context.Context, client *imds.Client) (*Metadata, error) {
	get := func(path string) (string, error) {
		out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			return "", fmt.Errorf("imds %s: %w", path, err)
		}
		defer out.Content.Close()
		b, err := io.ReadAll(io.LimitReader(out.Content, 64<<10))
		if err != nil {
			return "", fmt.Errorf("imds %s: %w", path, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	md := &Metadata{}
	var err error
	if md.InstanceID, err = get("instance-id"); err != nil {
		return nil, err
	}
	if md.Zone, err = get("placement/availability-zone"); err != nil {
		return nil, err
	}
	if md.Region, err = get("placement/region"); err != nil || md.Region == "" {
		out, rerr := client.GetRegion(ctx, &imds.GetRegionInput{})
		if rerr != nil {
			return nil, fmt.Errorf("imds region: %w", rerr)
		}
		md.Region = out.Region
	}
	if md.InstanceID == "" || md.Zone == "" || md.Region == "" {
		return nil, fmt.Errorf("imds: empty instance ID, zone or region (%q, %q, %q)", md.InstanceID, md.Zone, md.Region)
	}
	if md.ZoneID, err = get("placement/availability-zone-id"); err != nil {
		klog.V(2).InfoS("IMDS has no zone ID", "err", err)
	}
	if md.MAC, err = get("mac"); err != nil {
		klog.V(2).InfoS("IMDS has no MAC", "err", err)
	} else if md.VPCID, err = get("network/interfaces/macs/" + md.MAC + "/vpc-id"); err != nil {
		klog.V(2).InfoS("IMDS has no VPC ID", "err", err)
	}
	return md, nil
}
