# expect: reject UnboundedLoop
r0 = 0
loop:
if r0 > 100 goto out
goto loop
out:
exit
