# expect: reject ReadOnlyWrite
r10 = 0
r0 = 0
exit
