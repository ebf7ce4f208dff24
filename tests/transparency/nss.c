/* nss.c - name service look-ups (glibc loads its NSS modules with dlopen and allocates inside
 * them): getaddrinfo of localhost, getpwnam, getgrnam, getservbyname. */

#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(void)
{
    for (int round = 0; round < 50; round++) {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        int rc = getaddrinfo("localhost", "80", &hints, &res);
        if (round == 0) {
            if (rc) printf("getaddrinfo: %s\n", gai_strerror(rc));
            for (struct addrinfo *a = res; a; a = a->ai_next) {
                char buf[64];
                struct sockaddr_in *sin = (struct sockaddr_in *)a->ai_addr;
                printf("localhost: %s port %d\n", inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf), ntohs(sin->sin_port));
            }
        }
        if (res) freeaddrinfo(res);
        struct passwd *pw = getpwnam("root");
        struct group *gr = getgrnam("root");
        struct servent *se = getservbyname("http", "tcp");
        if (round == 0)
            printf("root: uid %d home %s, group gid %d, http port %d\n", pw ? (int)pw->pw_uid : -1,
                   pw ? pw->pw_dir : "?", gr ? (int)gr->gr_gid : -1, se ? ntohs((unsigned short)se->s_port) : -1);
    }
    return 0;
}
