// Plugins/Conv/conv_direct.c alone: first a check that its outputs and 16-lane partials are, bit for bit, the
// AVX-512 kernels' sums emulated one lane at a time with fmaf (exact() below: the AVX2 steps must give the
// same bits as the AVX-512 ones; on an AVX-512 Zen 5 both levels gave 0 of 206 cases mismatched, and it
// fails when the forward adds its bias last; the suite's CPULevelBitsTests compare the two levels' models
// on AVX-512 CPUs); then a check of its forward (bias, fused relu), weight, bias and
// input gradients against a plain double-precision loop, over the ConvNet's two layers and 200 random
// geometries (kernels 1..5, any padding below the kernel, 1..3 chunks of the batch, with and without
// the input gradient; guards after the output and the input gradient); then, with an argument, the thread CPU time of the ConvNet's conv_1
// (128x1x28x28 -> 8) and conv_2 (128x8x14x14 -> 16) forward (bias, relu) and backward over the whole
// batch (medians of 31 calls), so that neither the model around them nor time spent descheduled on a
// busy machine counts. Built as SwiftPM's release builds C (-O2):
//
//   clang -O2 -IPlugins/Conv -IPlugins/Support -IInclude Benchmarks/conv_direct_kernel.c \
//       Plugins/Conv/conv_direct.c Plugins/Conv/conv_direct_avx2.c -lm -o /tmp/conv_direct_kernel \
//       && /tmp/conv_direct_kernel time
//
// (no -mavx2 / -mfma: as in SwiftPM's build, the kernels carry their target attributes). It runs the
// CPU's level: the AVX-512 steps, or the AVX2 ones (conv_direct_avx2.c); PLY_CPU=avx2 picks the AVX2
// ones on an AVX-512 CPU. AVX2 at least (conv.c takes im2col below it). Exits 1 on a mismatch.
#include "conv_direct.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double ts(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static int cmpd(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
static unsigned long long st=88172645463325252ull;
static float ur(void){st^=st<<13;st^=st>>7;st^=st<<17;return (float)((st>>40)*(1.0/16777216.0))-0.5f;}
static float *rnd(size_t n){float*p=aligned_alloc(64,(n*4+63)/64*64+64);for(size_t i=0;i<n;i++)p[i]=ur();return p;}
// The AVX-512 kernels' sums, one float lane at a time with fmaf in their order (bias or 0, then input
// channels, then taps; the weight gradient's 16-lane partials over the vectors in order, per image, added
// to the chunk's; the bias gradient's two alternating accumulators): the outputs and partials of
// whichever level runs must equal these bit for bit. Returns the number of differing values.
static int64_t gx(const direct_geom*g,const float*x,int64_t n,int64_t c,int64_t r,int64_t q){ // padded x[n][c] at row r, column q
  int64_t h=r-g->PH,w=q-g->PW;return h<0||h>=g->H||w<0||w>=g->W?-1:((n*g->C+c)*g->H+h)*g->W+w;}
static int exact(direct_geom g,int64_t N,int relu,int bias,int wantdx,int chunks,const float*x,const float*w,const float*b,
                 const float*dy,const float*y,const float*dx,const float*sc,size_t bs){
  int64_t KK=g.KH*g.KW,Wp=g.W+2*g.PW,Qf=(g.OH*Wp+(g.OC%8?63:31))/(g.OC%8?64:32)*(g.OC%8?64:32),qh=g.KH-1-g.PH,qw=g.KW-1-g.PW;
  int64_t nw=g.OC*g.C*KK,diff=0;
  #define DYM(n,o,i,j) (relu&&!(y[(((n)*g.OC+(o))*g.OH+(i))*g.OW+(j)]>0)?0.f:dy[(((n)*g.OC+(o))*g.OH+(i))*g.OW+(j)])
  for(int64_t n=0;n<N;n++)for(int64_t o=0;o<g.OC;o++)for(int64_t i=0;i<g.OH;i++)for(int64_t j=0;j<g.OW;j++){
    float a=bias?b[o]:0.f;
    for(int64_t c=0;c<g.C;c++)for(int64_t t=0;t<KK;t++){int64_t k=gx(&g,x,n,c,i+t/g.KW,j+t%g.KW);a=fmaf(w[(o*g.C+c)*KK+t],k<0?0.f:x[k],a);}
    if(relu&&a<=0)a=0.f;
    float v=y[((n*g.OC+o)*g.OH+i)*g.OW+j];diff+=memcmp(&a,&v,4)!=0;}
  if(wantdx)for(int64_t n=0;n<N;n++)for(int64_t c=0;c<g.C;c++)for(int64_t i=0;i<g.H;i++)for(int64_t j=0;j<g.W;j++){
    float a=0.f;
    for(int64_t o=0;o<g.OC;o++)for(int64_t t=0;t<KK;t++){int64_t r=i+t/g.KW-qh,q=j+t%g.KW-qw;
      a=fmaf(w[(o*g.C+c)*KK+KK-1-t],r<0||r>=g.OH||q<0||q>=g.OW?0.f:DYM(n,o,r,q),a);}
    float v=dx[((n*g.C+c)*g.H+i)*g.W+j];diff+=memcmp(&a,&v,4)!=0;}
  float*P=malloc(sizeof(float)*(size_t)(nw+g.OC)*16);
  for(int ch=0;ch<chunks;ch++){int64_t n0=N*ch/chunks,n1=N*(ch+1)/chunks;memset(P,0,sizeof(float)*(size_t)(nw+g.OC)*16);
    for(int64_t n=n0;n<n1;n++){
      for(int64_t o=0;o<g.OC;o++)for(int64_t c=0;c<g.C;c++)for(int64_t t=0;t<KK;t++)for(int l=0;l<16;l++){float a=0.f;
        for(int64_t q=l;q<Qf;q+=16){int ok=q<g.OH*Wp&&q%Wp<g.OW;int64_t p=q+(t/g.KW)*Wp+t%g.KW,k=gx(&g,x,n,c,p/Wp,p%Wp);
          a=fmaf(ok?DYM(n,o,q/Wp,q%Wp):0.f,ok&&k>=0?x[k]:0.f,a);}
        P[((o*g.C+c)*KK+t)*16+l]+=a;}
      if(bias)for(int64_t o=0;o<g.OC;o++)for(int l=0;l<16;l++){float a=P[(nw+o)*16+l],bb=0.f;int64_t i=0;
        #define GV(q) ((q)<g.OH*Wp&&(q)%Wp<g.OW?DYM(n,o,(q)/Wp,(q)%Wp):0.f)
        for(;i+32<=Qf;i+=32){a+=GV(i+l);bb+=GV(i+16+l);}
        for(;i<Qf;i+=16)a+=GV(i+l);
        P[(nw+o)*16+l]=a+bb;}}
    diff+=memcmp(P,sc+ch*bs,sizeof(float)*(size_t)(bias?nw+g.OC:nw)*16)!=0;}
  free(P);
  return diff!=0;
}
// reference: y = conv(x) + b, relu; dy masked by y>0; dw, db, dx
static int check(direct_geom g, int64_t N, int relu, int bias, int wantdx, int chunks){
  int64_t KK=g.KH*g.KW; size_t xin=N*g.C*g.H*g.W, yo=N*g.OC*g.OH*g.OW, nw=g.OC*g.C*KK;
  float*x=rnd(xin),*w=rnd(nw),*b=rnd(g.OC),*dy=rnd(yo),*y=rnd(yo),*dx=rnd(xin),*wp=rnd(nw),*wf=rnd(nw);
  double*ry=calloc(yo,8),*rdx=calloc(xin,8),*rdw=calloc(nw,8),*rdb=calloc(g.OC,8);
  for(int64_t n=0;n<N;n++)for(int64_t o=0;o<g.OC;o++)for(int64_t i=0;i<g.OH;i++)for(int64_t j=0;j<g.OW;j++){
    double s=bias?b[o]:0;for(int64_t c=0;c<g.C;c++)for(int64_t ki=0;ki<g.KH;ki++)for(int64_t kj=0;kj<g.KW;kj++){
      int64_t h=i+ki-g.PH,ww=j+kj-g.PW;if(h<0||h>=g.H||ww<0||ww>=g.W)continue;s+=(double)w[((o*g.C+c)*g.KH+ki)*g.KW+kj]*x[((n*g.C+c)*g.H+h)*g.W+ww];}
    if(relu&&s<=0)s=0;ry[((n*g.OC+o)*g.OH+i)*g.OW+j]=s;}
  for(int k=0;k<8;k++)y[yo+k]=dx[xin+k]=12345.f; // guards: nothing written past y or dx
  conv_direct_pack(&g,w,wp);conv_direct_flip(&g,w,wf);
  size_t fs=conv_direct_forward_floats(&g),bs=conv_direct_backward_floats(&g);
  float*sc=aligned_alloc(64,((fs>bs?fs:bs)*chunks*4+63)/64*64);
  for(int t=0;t<chunks;t++)conv_direct_forward(&g,wp,bias?b:NULL,relu,x,y,N*t/chunks,N*(t+1)/chunks,sc+t*fs);
  double e=0,m=0;for(size_t i=0;i<yo;i++){e=fmax(e,fabs(y[i]-ry[i]));m=fmax(m,fabs(ry[i]));}
  int bad=e>1e-5*fmax(1,m);
  for(int64_t n=0;n<N;n++)for(int64_t o=0;o<g.OC;o++)for(int64_t i=0;i<g.OH;i++)for(int64_t j=0;j<g.OW;j++){
    size_t yi=((n*g.OC+o)*g.OH+i)*g.OW+j;double d=(relu&&!(y[yi]>0))?0:dy[yi];rdb[o]+=d;
    for(int64_t c=0;c<g.C;c++)for(int64_t ki=0;ki<g.KH;ki++)for(int64_t kj=0;kj<g.KW;kj++){
      int64_t h=i+ki-g.PH,ww=j+kj-g.PW;if(h<0||h>=g.H||ww<0||ww>=g.W)continue;size_t wi=((o*g.C+c)*g.KH+ki)*g.KW+kj,xi=((n*g.C+c)*g.H+h)*g.W+ww;
      rdw[wi]+=d*x[xi];rdx[xi]+=d*w[wi];}}
  double*dw=calloc(nw,8),*db=calloc(g.OC,8);
  for(int t=0;t<chunks;t++){float*s=sc+t*bs;conv_direct_backward(&g,wf,x,dy,relu?y:NULL,wantdx?dx:NULL,N*t/chunks,N*(t+1)/chunks,s,bias);
    for(size_t i=0;i<nw;i++)for(int k=0;k<16;k++)dw[i]+=s[i*16+k];
    if(bias)for(int64_t o=0;o<g.OC;o++)for(int k=0;k<16;k++)db[o]+=s[(nw+o)*16+k];}
  if(exact(g,N,relu,bias,wantdx,chunks,x,w,b,dy,y,dx,sc,bs)){printf("NOT THE AVX-512 ORDER: ");bad=1;}
  double ew=0,mw=0,ed=0,md=0,eb=0;
  for(size_t i=0;i<nw;i++){ew=fmax(ew,fabs(dw[i]-rdw[i]));mw=fmax(mw,fabs(rdw[i]));}
  if(bias)for(int64_t o=0;o<g.OC;o++)eb=fmax(eb,fabs(db[o]-rdb[o])/fmax(1,fabs(rdb[o])));
  if(wantdx)for(size_t i=0;i<xin;i++){ed=fmax(ed,fabs(dx[i]-rdx[i]));md=fmax(md,fabs(rdx[i]));}
  bad|=ew>1e-4*fmax(1,mw)||eb>1e-4||ed>1e-5*fmax(1,md);
  for(int k=0;k<8;k++)if(y[yo+k]!=12345.f||dx[xin+k]!=12345.f){bad=1;e=INFINITY;}
  if(bad)printf("MISMATCH C%ld OC%ld %ldx%ld k%ldx%ld p%ld,%ld N%ld relu%d bias%d dx%d ch%d: y %g dw %g db %g dx %g\n",(long)g.C,(long)g.OC,(long)g.H,(long)g.W,(long)g.KH,(long)g.KW,(long)g.PH,(long)g.PW,(long)N,relu,bias,wantdx,chunks,e,ew/fmax(1,mw),eb,ed);
  free(x);free(w);free(b);free(dy);free(y);free(dx);free(wp);free(wf);free(ry);free(rdx);free(rdw);free(rdb);free(dw);free(db);free(sc);
  return bad;
}
int main(int argc,char**argv){
  (void)argv;
  int bad=0,cases=0;
  direct_geom fix[2]={{1,8,3,3,1,1,28,28,28,28},{8,16,3,3,1,1,14,14,14,14}};
  for(int k=0;k<2;k++){bad+=check(fix[k],128,1,1,k,1);bad+=check(fix[k],13,1,1,1,3);bad+=check(fix[k],5,0,0,1,2);cases+=3;}
  for(int r=0;r<200;r++){int64_t kh=1+(st%5),kw=1+((st>>8)%5);ur();
    direct_geom g={1+(st>>16)%16,1+(st>>24)%40,kh,kw,(st>>32)%kh,(st>>40)%kw,0,0,0,0};ur();
    g.H=kh+(st%20);g.W=kw+((st>>8)%20);g.OH=g.H+2*g.PH-kh+1;g.OW=g.W+2*g.PW-kw+1;int64_t N=1+(st>>16)%9;
    bad+=check(g,N,(st>>24)&1,(st>>25)&1,(st>>26)&1,1+(st>>27)%3);cases++;ur();}
  printf("%d of %d cases mismatched\n",bad,cases);
  if(argc>1){int64_t N=128;
  for(int k=0;k<2;k++){direct_geom*g=&fix[k];
    size_t xin=N*g->C*g->H*g->W, yo=N*g->OC*g->OH*g->OW, nw=g->OC*g->C*9;
    float*x=rnd(xin),*y=rnd(yo),*dy=rnd(yo),*dx=rnd(xin),*w=rnd(nw),*b=rnd(g->OC),*wp=rnd(nw),*wf=rnd(nw);
    float*s=aligned_alloc(64,(conv_direct_backward_floats(g)+conv_direct_forward_floats(g))*4+64);
    conv_direct_pack(g,w,wp);conv_direct_flip(g,w,wf);
    double tf[31],tb[31];
    for(int r=0;r<31;r++){double t0=ts();conv_direct_forward(g,wp,b,1,x,y,0,N,s);double t1=ts();
      conv_direct_backward(g,wf,x,dy,y,k?dx:NULL,0,N,s,1);double t2=ts();tf[r]=t1-t0;tb[r]=t2-t1;}
    qsort(tf,31,8,cmpd);qsort(tb,31,8,cmpd);
    printf("conv%d: forward %.3f ms backward %.3f ms\n",k+1,tf[15]*1e3,tb[15]*1e3);
  }}
  return bad!=0;
}
