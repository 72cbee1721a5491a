/** Hashes with the given argon2id parameters for a duration; prints the count. Args: memKiB timeCost parallelism ms. */
import argon2 from 'argon2';

const [memoryCost, timeCost, parallelism, ms] = process.argv.slice(2).map(Number) as [number, number, number, number];
const end = Date.now() + ms;
let n = 0;
while (Date.now() < end) {
  await argon2.hash('correct horse battery staple', { type: argon2.argon2id, memoryCost, timeCost, parallelism });
  n += 1;
}
process.stdout.write(`${n}\n`);
