// Availability zones of the local provider: subnet i of a capacity provider is in zone
// <region> + a, b, c… by its position (the same rule everywhere a zone is derived).
export function zoneOfSubnet(region: string, index: number): string {
  return `${region}${'abcdef'[index % 6]}`;
}
