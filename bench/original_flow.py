"""Baseline for bench/provision.py: the AWS calls AWS's 2019 amazonei_setup.py makes for a first
setup (default VPC, 4 AZs, one key pair, new role/group/endpoint), in its order, one at a time,
with no prompts. A re-enactment of its call sequence, not its code: 27 calls, strictly serial.

Usage: python bench/original_flow.py REGION INSTANCE_TYPE   (boto3 honours AWS_ENDPOINT_URL)
"""
import json
import sys

import boto3

region, instance_type = sys.argv[1], sys.argv[2]
session = boto3.Session(region_name=region)
ec2, iam = session.client("ec2"), session.client("iam")
service = f"com.amazonaws.{region}.elastic-inference.runtime"
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                  "Action": ["sts:AssumeRole"]}]}
policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "elastic-inference:Connect", "iam:List*", "iam:Get*", "ec2:Describe*", "ec2:Get*"]}]}

azs = ec2.describe_vpc_endpoint_services(ServiceNames=[service])["ServiceDetails"][0]["AvailabilityZones"]  # 1
image = sorted(ec2.describe_images(Owners=["amazon"], Filters=[  # 2
    {"Name": "name", "Values": ["Deep Learning AMI (Amazon Linux)*"]}])["Images"], key=lambda i: i["CreationDate"])[-1]
keys = ec2.describe_key_pairs()["KeyPairs"]  # 3
key = keys[0]["KeyName"] if keys else "bench-key"
iam.list_roles()  # 4
iam.create_role(RoleName="Amazon-Elastic-Inference-Connect-Role", AssumeRolePolicyDocument=json.dumps(trust))  # 5
arn = iam.create_policy(PolicyName="Amazon-Elastic-Inference-Connect-Policy",  # 6
                        PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
iam.attach_role_policy(RoleName="Amazon-Elastic-Inference-Connect-Role", PolicyArn=arn)  # 7
iam.list_instance_profiles_for_role(RoleName="Amazon-Elastic-Inference-Connect-Role")  # 8
iam.create_instance_profile(InstanceProfileName="Amazon-Elastic-Inference-Instance-Profile")  # 9
iam.add_role_to_instance_profile(InstanceProfileName="Amazon-Elastic-Inference-Instance-Profile",  # 10
                                 RoleName="Amazon-Elastic-Inference-Connect-Role")
vpc = next(v for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"])["VpcId"]  # 11
ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},  # 12
                                      {"Name": "group-name", "Values": ["amazon_ei_security_group"]}])
group = ec2.create_security_group(GroupName="amazon_ei_security_group", Description="EI",  # 13
                                  VpcId=vpc)["GroupId"]
for port in (443, 22):  # 14, 15
    ec2.authorize_security_group_ingress(GroupId=group, IpProtocol="tcp", CidrIp="0.0.0.0/0", FromPort=port,
                                         ToPort=port)
subnets = []
for az in azs:  # 16-19 (one describe per EI AZ)
    subnets += ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                             {"Name": "availability-zone", "Values": [az]}])["Subnets"]
subnet = subnets[0]["SubnetId"]
ec2.describe_vpc_endpoint_services(ServiceNames=[service])  # 20
ec2.describe_vpc_endpoints(Filters=[{"Name": "service-name", "Values": [service]},  # 21
                                    {"Name": "vpc-id", "Values": [vpc]}])
ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})  # 22
ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # 23
ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=vpc, ServiceName=service, SubnetIds=[subnet],  # 24
                        SecurityGroupIds=[group], PrivateDnsEnabled=True)
instance = ec2.run_instances(ImageId=image["ImageId"], InstanceType=instance_type, KeyName=key, MinCount=1,  # 25
                             MaxCount=1, IamInstanceProfile={"Name": "Amazon-Elastic-Inference-Instance-Profile"},
                             ElasticInferenceAccelerators=[{"Type": "eia2.medium"}],
                             NetworkInterfaces=[{"SubnetId": subnet, "DeviceIndex": 0,
                                                 "AssociatePublicIpAddress": True, "Groups": [group]}])
instance_id = instance["Instances"][0]["InstanceId"]
ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id])  # 26
print(ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["PublicDnsName"])  # 27
