# Interactive examples (not a script to run as is): the same jobs as the two
# .sbatch files, inside an allocation (docs/launching.md section 6).
#
# multi_worker_mirrored over 2 nodes, one task each:
salloc --nodes=2 --ntasks-per-node=1 --cpus-per-task=8
srun --distribution=block meshtrain check-config
srun --distribution=block meshtrain train --config configs/fashion_mnist_mlp.json \
    --model-dir /shared/runs/fmnist-mwms --strategy multi_worker_mirrored --threads 8
exit
#
# parameter_server: 4 tasks over 2 nodes, rank 0 is ps:0, ranks 1-3 workers:
salloc --nodes=2 --ntasks-per-node=2 --cpus-per-task=4
srun --distribution=block meshtrain check-config --ps 1
srun --distribution=block meshtrain train --config configs/fashion_mnist_mlp.json \
    --model-dir /shared/runs/fmnist-ps --strategy parameter_server --ps 1 --global-batch-size 252 --threads 4
exit
#
# Two jobs sharing nodes need different port bases (every task of a job the same):
srun --distribution=block meshtrain train --port-base 9888 ...
