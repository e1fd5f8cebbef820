# expect: accept
# kernel: reject
# why: the kernel offers l3_csum_replace only to skb programs; the switch's XDP runtime provides it (it never moves packet data)
r2 = 24
r3 = 0
r4 = 0
r5 = 2
call 10
r0 = 2
exit
